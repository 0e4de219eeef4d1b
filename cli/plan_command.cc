// `tandem plan`: which node runs which layers, with the predicted speed. Either a dry
// run for a model and a cluster described in NODES.json, or (--coordinator) the live
// plan of a running cluster, predicted by the same cost model from the nodes' measured
// profiles. Exit status: 0 planned, 1 bad input or unreachable coordinator, 2 no plan
// fits the cluster (the reason says by how much) or the live cluster is not ready.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_format.h"
#include "cli/commands.h"
#include "cli/model_loading.h"
#include "cli/node_profiles.h"
#include "cli/token_options.h"
#include "coordinator/model_profile.h"
#include "model/gguf.h"
#include "model/hparams.h"
#include "net/client.h"
#include "nlohmann/json.hpp"
#include "partition/planner.h"
#include "partition/units.h"

namespace tandem::cli {
namespace {

constexpr int kExitInfeasible = 2;

struct PlanOptions {
  std::string model_path;
  std::string nodes_path;
  std::string coordinator;  // HOST:PORT of a running cluster: show its live plan
  TokenOptions token;
  double wait_seconds = 0;  // live: wait this long for the cluster to become ready
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
  absl::StatusOr<partition::ModelProfile> model =
      tandem::BuildModelProfile(**file, *hparams, /*wire_bytes_per_value=*/sizeof(float));
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

// The plan as one JSON object; the dry run and the live plan share its shape.
nlohmann::json PlanJson(const absl::StatusOr<partition::Plan>& plan, const std::string& objective) {
  nlohmann::json out;
  out["feasible"] = plan.ok();
  out["reason"] = plan.ok() ? "" : std::string(plan.status().message());
  out["objective"] = objective;
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
  return out;
}

// The stages, one row each, and the predicted speed.
void PrintStages(const partition::Plan& plan) {
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

void PrintTable(const partition::Plan& plan, const PlanInputs& inputs, const PlanOptions& options) {
  const partition::Requirements& req = inputs.requirements;
  std::printf("%s: %zu layers; objective %s; KV cache for context %lld x %lld session%s\n",
              options.model_path.c_str(), inputs.model.layers.size(), options.objective.c_str(),
              static_cast<long long>(req.context_length), static_cast<long long>(req.sessions),
              req.sessions == 1 ? "" : "s");
  PrintStages(plan);
}

// The live plan in the planner's terms. The coordinator judged it with the partition cost
// model from the nodes' measured profiles (coordinator/planning.h), whatever its policy.
partition::Plan LivePlan(const v1::StatusResponse& status) {
  partition::Plan plan;
  for (const v1::PlanStage& live : status.stages()) {
    partition::Stage stage;
    stage.node_name = live.node_id();
    for (int j = 0; j < status.nodes_size(); ++j) {
      if (status.nodes(j).node_id() == live.node_id()) stage.node_index = j;
    }
    stage.layer_first = live.layer_first();
    stage.layer_last = live.layer_last();
    stage.weight_bytes = live.weight_bytes();
    stage.kv_bytes = live.kv_bytes();
    // A coordinator that does not split its memory count reports it all as weights.
    if (stage.weight_bytes + stage.kv_bytes == 0) stage.weight_bytes = live.memory_bytes();
    stage.compute_seconds = live.compute_ms() * 1e-3;
    plan.stages.push_back(std::move(stage));
  }
  plan.seconds_per_token = status.predicted_ms_per_token() * 1e-3;
  plan.tokens_per_second = status.predicted_tokens_per_s();
  plan.bottleneck_seconds = plan.tokens_per_second > 0 ? 1 / plan.tokens_per_second : 0;
  return plan;
}

// Waits up to options.wait_seconds for the cluster to be ready; the last status seen.
absl::StatusOr<v1::StatusResponse> LiveStatus(const PlanOptions& options) {
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::duration<double>(std::max(0.0, options.wait_seconds));
  for (;;) {
    absl::StatusOr<v1::StatusResponse> status = RemoteStatus(options.coordinator);
    const bool expired = std::chrono::steady_clock::now() >= deadline;
    if (status.ok() && (status->ready() || expired)) return status;
    if (!status.ok() && expired) {
      return absl::UnavailableError(absl::StrFormat("cannot reach the coordinator at %s: %s",
                                                    options.coordinator,
                                                    std::string(status.status().message())));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

int RunLivePlan(const PlanOptions& options) {
  if (absl::Status s = JoinAsClient(options.coordinator, options.token); !s.ok()) {
    return ReportError(s);
  }
  absl::StatusOr<v1::StatusResponse> status = LiveStatus(options);
  if (!status.ok()) {
    return ReportError(ExplainClusterError(options.coordinator, options.token, status.status()));
  }
  absl::StatusOr<partition::Plan> plan = LivePlan(*status);
  if (!status->ready()) {
    plan =
        absl::UnavailableError(absl::StrFormat("the cluster is not ready: %s", status->reason()));
  }

  if (options.json) {
    nlohmann::json out = PlanJson(plan, "latency");
    out["coordinator"] = options.coordinator;
    out["ready"] = status->ready();
    out["plan_epoch"] = status->plan_epoch();
    out["planner"] = status->planner();
    out["model"] = status->model();
    out["n_layers"] = status->n_layers();
    out["context"] = status->n_ctx();
    out["sessions"] = status->sessions();
    for (size_t s = 0; plan.ok() && s < plan->stages.size(); ++s) {
      out["stages"][s]["address"] = status->stages(static_cast<int>(s)).address();
    }
    out["nodes"] = nlohmann::json::array();
    for (const v1::NodeInfo& node : status->nodes()) {
      out["nodes"].push_back({{"node", node.node_id()},
                              {"address", node.address()},
                              {"memory_gib", GiB(node.profile().memory_bytes())},
                              {"cores", node.profile().cores()},
                              {"threads", node.profile().threads()},
                              {"bandwidth_gbs", node.profile().bandwidth_gbs()},
                              {"gflops", node.profile().gflops()},
                              {"rtt_ms", node.rtt_ms()}});
    }
    std::printf("%s\n", out.dump(2).c_str());
  } else if (plan.ok()) {
    std::printf(
        "%s: %s, %d layers; planner %s, plan epoch %llu; KV cache for context %lld x %lld "
        "session%s\n",
        options.coordinator.c_str(), status->model().c_str(), status->n_layers(),
        status->planner().c_str(), static_cast<unsigned long long>(status->plan_epoch()),
        static_cast<long long>(status->n_ctx()), static_cast<long long>(status->sessions()),
        status->sessions() == 1 ? "" : "s");
    PrintStages(*plan);
    std::printf("\n%-16s  %-21s  %7s  %10s  %10s  %10s  %8s\n", "node (measured)", "address",
                "threads", "memory", "bandwidth", "matmul", "rtt");
    for (const v1::NodeInfo& node : status->nodes()) {
      std::printf("%-16s  %-21s  %7u  %10s  %6.1f GB/s  %5.1f GF/s  %5.3f ms\n",
                  node.node_id().c_str(), node.address().c_str(), node.profile().threads(),
                  partition::FormatGiB(node.profile().memory_bytes()).c_str(),
                  node.profile().bandwidth_gbs(), node.profile().gflops(), node.rtt_ms());
    }
  }
  if (!plan.ok()) {
    std::fprintf(stderr, "tandem: %s\n", std::string(plan.status().message()).c_str());
    return kExitInfeasible;
  }
  return 0;
}

int RunPlan(const PlanOptions& options) {
  const bool dry_run = !options.model_path.empty() || !options.nodes_path.empty();
  if (!options.coordinator.empty() && dry_run) {
    return ReportError(absl::InvalidArgumentError(
        "give either --coordinator (a running cluster's plan) or -m and --nodes (a dry run), "
        "not both"));
  }
  if (!options.coordinator.empty()) return RunLivePlan(options);
  if (options.model_path.empty() || options.nodes_path.empty()) {
    return ReportError(absl::InvalidArgumentError(
        "either --coordinator HOST:PORT, or both -m MODEL and --nodes NODES.json, is required"));
  }
  absl::StatusOr<PlanInputs> inputs = GatherInputs(options);
  if (!inputs.ok()) return ReportError(inputs.status());
  absl::StatusOr<partition::Plan> plan =
      partition::FindPlan(inputs->model, inputs->nodes, inputs->requirements);
  const bool infeasible = plan.status().code() == absl::StatusCode::kResourceExhausted;
  if (!plan.ok() && !infeasible) return ReportError(plan.status());

  if (options.json) {
    std::printf("%s\n", PlanJson(plan, options.objective).dump(2).c_str());
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
      "plan",
      "Split a model's layers over a cluster and predict its speed, or show a running "
      "cluster's plan (exit 2: no plan fits / not ready)");
  cmd->add_option("-m,--model", options->model_path, "GGUF model file (dry run)");
  cmd->add_option("--nodes", options->nodes_path, "NODES.json describing the cluster (dry run)");
  cmd->add_option("--coordinator", options->coordinator,
                  "HOST:PORT of a running coordinator: show its live plan and measured nodes");
  AddTokenOptions(cmd, &options->token);
  cmd->add_option("--wait", options->wait_seconds,
                  "With --coordinator: wait up to this many seconds for the cluster to be ready")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
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
