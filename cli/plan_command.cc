// `tandem plan`: which node runs which layers, for a model and a cluster described
// in NODES.json, with the predicted speed. Exit status: 0 planned, 1 bad input,
// 2 no plan fits the cluster (the reason says by how much).
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_format.h"
#include "cli/commands.h"
#include "cli/model_loading.h"
#include "coordinator/model_profile.h"
#include "cli/node_profiles.h"
#include "model/gguf.h"
#include "model/hparams.h"
#include "nlohmann/json.hpp"
#include "partition/planner.h"
#include "partition/units.h"

namespace tandem::cli {
namespace {

constexpr int kExitInfeasible = 2;

struct PlanOptions {
  std::string model_path;
  std::string nodes_path;
  std::string objective = "latency";
  int64_t context = 0;  // 0: the model's training context
  int64_t sessions = 1;
  double headroom_gib = 0;
  double headroom_fraction = 0.05;
  bool json = false;
};

// Everything the planner needs, gathered from the command line's sources.
struct PlanInputs {
  partition::ModelProfile model;
  std::vector<partition::NodeProfile> nodes;
  partition::Requirements requirements;
};

absl::StatusOr<PlanInputs> GatherInputs(const PlanOptions& options) {
  absl::StatusOr<std::unique_ptr<GgufFile>> file = GgufFile::Open(options.model_path);
  if (!file.ok()) return file.status();
  absl::StatusOr<Hparams> hparams = ReadHparams(**file);
  if (!hparams.ok()) return hparams.status();

  PlanInputs inputs;
  absl::StatusOr<partition::ModelProfile> model = tandem::BuildModelProfile(**file, *hparams);
  if (!model.ok()) return model.status();
  inputs.model = *std::move(model);

  absl::StatusOr<std::vector<partition::NodeProfile>> nodes = ReadNodeProfiles(options.nodes_path);
  if (!nodes.ok()) return nodes.status();
  inputs.nodes = *std::move(nodes);

  partition::Requirements& req = inputs.requirements;
  req.context_length = options.context > 0 ? options.context : hparams->n_ctx_train;
  req.sessions = options.sessions;
  req.headroom_bytes = static_cast<uint64_t>(options.headroom_gib * partition::kBytesPerGiB);
  req.headroom_fraction = options.headroom_fraction;
  req.objective = options.objective == "throughput" ? partition::Objective::kThroughput
                                                    : partition::Objective::kLatency;
  return inputs;
}

double GiB(uint64_t bytes) { return static_cast<double>(bytes) / partition::kBytesPerGiB; }

void PrintJson(const absl::StatusOr<partition::Plan>& plan, const PlanOptions& options) {
  nlohmann::json out;
  out["feasible"] = plan.ok();
  out["reason"] = plan.ok() ? "" : std::string(plan.status().message());
  out["objective"] = options.objective;
  out["stages"] = nlohmann::json::array();
  if (plan.ok()) {
    for (const partition::Stage& stage : plan->stages) {
      out["stages"].push_back({{"node", stage.node_name},
                               {"first_layer", stage.layer_first},
                               {"last_layer", stage.layer_last},
                               {"memory_gib", GiB(stage.memory_bytes())},
                               {"weights_gib", GiB(stage.weight_bytes)},
                               {"kv_cache_gib", GiB(stage.kv_bytes)},
                               {"compute_ms", stage.compute_seconds * 1e3}});
    }
    out["predicted_ms_per_token"] = plan->seconds_per_token * 1e3;
    out["predicted_tokens_per_s"] = plan->tokens_per_second;
    out["exact"] = plan->exact;
  } else {
    out["predicted_ms_per_token"] = nullptr;
    out["predicted_tokens_per_s"] = nullptr;
  }
  std::printf("%s\n", out.dump(2).c_str());
}

void PrintTable(const partition::Plan& plan, const PlanInputs& inputs, const PlanOptions& options) {
  const partition::Requirements& req = inputs.requirements;
  std::printf("%s: %zu layers; objective %s; KV cache for context %lld x %lld session%s\n",
              options.model_path.c_str(), inputs.model.layers.size(), options.objective.c_str(),
              static_cast<long long>(req.context_length), static_cast<long long>(req.sessions),
              req.sessions == 1 ? "" : "s");
  std::printf("%-5s  %-16s  %-12s  %10s  %10s  %10s  %11s\n", "stage", "node", "layers", "weights",
              "kv cache", "memory", "compute");
  for (size_t s = 0; s < plan.stages.size(); ++s) {
    const partition::Stage& stage = plan.stages[s];
    const std::string layers = absl::StrFormat("[%d, %d)", stage.layer_first, stage.layer_last);
    std::printf("%5zu  %-16s  %-12s  %10s  %10s  %10s  %8.3f ms\n", s, stage.node_name.c_str(),
                layers.c_str(), partition::FormatGiB(stage.weight_bytes).c_str(),
                partition::FormatGiB(stage.kv_bytes).c_str(),
                partition::FormatGiB(stage.memory_bytes()).c_str(), stage.compute_seconds * 1e3);
  }
  std::printf("predicted: %.3f ms/token for one session, %.1f tokens/s pipelined over many%s\n",
              plan.seconds_per_token * 1e3, plan.tokens_per_second,
              plan.exact ? "" : " (heuristic: too many nodes for the exact search)");
}

int RunPlan(const PlanOptions& options) {
  absl::StatusOr<PlanInputs> inputs = GatherInputs(options);
  if (!inputs.ok()) return ReportError(inputs.status());
  absl::StatusOr<partition::Plan> plan =
      partition::FindPlan(inputs->model, inputs->nodes, inputs->requirements);
  const bool infeasible = plan.status().code() == absl::StatusCode::kResourceExhausted;
  if (!plan.ok() && !infeasible) return ReportError(plan.status());

  if (options.json) {
    PrintJson(plan, options);
  } else if (plan.ok()) {
    PrintTable(*plan, *inputs, options);
  }
  if (infeasible) {
    std::fprintf(stderr, "tandem: no plan fits: %s\n",
                 std::string(plan.status().message()).c_str());
    return kExitInfeasible;
  }
  return 0;
}

}  // namespace

void RegisterPlanCommand(CLI::App& app, RunState& state) {
  auto options = std::make_shared<PlanOptions>();
  CLI::App* cmd = app.add_subcommand(
      "plan", "Split a model's layers over a cluster and predict its speed (exit 2: no plan fits)");
  cmd->add_option("-m,--model", options->model_path, "GGUF model file")->required();
  cmd->add_option("--nodes", options->nodes_path, "NODES.json describing the cluster")->required();
  cmd->add_option("--objective", options->objective,
                  "latency (one session's time per token) or throughput (many sessions)")
      ->check(CLI::IsMember({"latency", "throughput"}))
      ->capture_default_str();
  cmd->add_option("--context", options->context,
                  "Context length to reserve KV cache for (default: the model's)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--sessions", options->sessions, "Concurrent sessions to reserve KV cache for")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--headroom-gib", options->headroom_gib, "Memory left free on every node (GiB)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--headroom-fraction", options->headroom_fraction,
                  "Fraction of every node's memory left free")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  cmd->add_flag("--json", options->json, "Print one JSON object instead of a table");
  cmd->callback([options, &state] { state.exit_code = RunPlan(*options); });
}

}  // namespace tandem::cli
