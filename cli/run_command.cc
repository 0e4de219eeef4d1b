// `tandem run`: a whole cluster on this machine in one command. Starts a coordinator and
// N nodes on 127.0.0.1, prints the plan, generates, and takes everything down again.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "cli/commands.h"
#include "cli/generation_output.h"
#include "cli/model_loading.h"
#include "cli/process_group.h"
#include "cli/remote_generation.h"
#include "net/client.h"

namespace tandem::cli {
namespace {

struct RunOptions {
  std::string model;
  int nodes = 2;
  std::string prompt = "Once upon a time";
  int32_t n_predict = 32;
  SamplingParams sampling;
  int64_t seed = -1;
  int threads = 0;
  std::string planner = "even";
  std::string split;
  std::string wire_dtype = "f32";
  int64_t ctx_size = 0;
  bool json = false;
  bool stop_at_eos = false;
  bool keep_logs = false;
};

std::string Tail(const std::string& path, size_t max_bytes = 2000) {
  std::ifstream in(path);
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return all.size() > max_bytes ? all.substr(all.size() - max_bytes) : all;
}

void PrintPlan(const v1::StatusResponse& s) {
  std::fprintf(stderr, "plan (epoch %llu): %d stage(s)\n", static_cast<unsigned long long>(s.plan_epoch()),
               s.stages_size());
  std::fprintf(stderr, "  %-8s %-18s %-12s %12s %14s\n", "node", "address", "layers", "memory MiB", "offers MiB");
  for (const auto& st : s.stages()) {
    std::fprintf(stderr, "  %-8s %-18s [%3d, %3d)   %12.1f %14.1f\n", st.node_id().c_str(),
                 st.address().c_str(), st.layer_first(), st.layer_last(), st.memory_bytes() / 1048576.0,
                 st.node_memory_bytes() / 1048576.0);
  }
}

int RunCluster(RunOptions& o) {
  if (o.nodes < 1) return ReportError(absl::InvalidArgumentError("--nodes must be at least 1"));
  if (::access(o.model.c_str(), R_OK) != 0) {
    return ReportError(absl::NotFoundError(absl::StrCat(o.model, ": cannot read the model file")));
  }
  o.sampling.seed = o.seed >= 0 ? static_cast<uint64_t>(o.seed) : std::random_device{}();
  const int hw = static_cast<int>(std::thread::hardware_concurrency());
  // With one session only one stage works at a time, so every node may use every core.
  const int threads = o.threads > 0 ? o.threads : std::max(1, hw);
  const std::string exe = std::filesystem::read_symlink("/proc/self/exe").string();
  char dir_template[] = "/tmp/tandem-run-XXXXXX";
  if (!::mkdtemp(dir_template)) return ReportError(absl::InternalError("cannot create a temporary folder"));
  const std::string dir = dir_template;

  InstallChildReaper();
  const int code = [&]() -> int {
    ProcessGroup group;
    const std::string port_file = dir + "/coordinator.port";
    std::vector<std::string> cargs = {exe, "coordinator", "--model", o.model, "--listen", "127.0.0.1:0",
                                      "--port-file", port_file, "--min-nodes", std::to_string(o.nodes),
                                      "--planner", o.planner, "--wire-dtype", o.wire_dtype};
    if (!o.split.empty()) cargs.insert(cargs.end(), {"--split", o.split});
    if (o.ctx_size > 0) cargs.insert(cargs.end(), {"--ctx-size", std::to_string(o.ctx_size)});
    group.Spawn("coordinator", cargs, dir + "/coordinator.log");

    auto fail = [&](const std::string& why, const std::string& log) {
      if (Interrupted()) return 130;
      std::fprintf(stderr, "tandem: error: %s\n", why.c_str());
      if (!log.empty()) std::fprintf(stderr, "--- %s ---\n%s\n", log.c_str(), Tail(log).c_str());
      return 1;
    };
    // Wait for the coordinator's port.
    std::string address;
    for (int i = 0; i < 600 && address.empty(); ++i) {
      std::ifstream in(port_file);
      int port = 0;
      if (in >> port && port > 0) address = absl::StrCat("127.0.0.1:", port);
      std::string exited = group.CheckExited();
      if (!exited.empty()) return fail(exited, dir + "/coordinator.log");
      if (address.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (address.empty()) return fail("the coordinator did not start", dir + "/coordinator.log");

    for (int i = 0; i < o.nodes; ++i) {
      group.Spawn(absl::StrCat("node ", i), {exe, "node", "--coordinator", address, "--model", o.model,
                                             "--threads", std::to_string(threads)},
                  absl::StrCat(dir, "/node", i, ".log"));
    }
    // Wait for the plan.
    v1::StatusResponse status;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(5);
    for (;;) {
      std::string exited = group.CheckExited();
      if (!exited.empty()) {
        std::string log = exited.rfind("node", 0) == 0
                              ? absl::StrCat(dir, "/node", exited.substr(5, exited.find(' ', 5) - 5), ".log")
                              : dir + "/coordinator.log";
        return fail(exited, log);
      }
      auto s = RemoteStatus(address, 1000);
      if (s.ok() && s->ready()) {
        status = *s;
        break;
      }
      if (std::chrono::steady_clock::now() > deadline) {
        return fail(absl::StrCat("the cluster did not become ready: ", s.ok() ? s->reason() : std::string(s.status().message())),
                    dir + "/coordinator.log");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    PrintPlan(status);

    GenerationOutput out;
    out.seed = o.sampling.seed;
    absl::Status s = RemoteGenerateText(address, o.prompt, o.n_predict, o.sampling, o.stop_at_eos,
                                        !o.json, &out);
    if (!s.ok()) return fail(std::string(s.message()), dir + "/coordinator.log");
    if (o.json) {
      PrintGenerationJson(out);
    } else {
      PrintGenerationSummary(out);
    }
    return 0;
  }();  // the ProcessGroup has stopped every child here
  if (Interrupted()) {
    std::filesystem::remove_all(dir);
    std::fprintf(stderr, "tandem: interrupted; the cluster is stopped\n");
    return 130;
  }
  if (o.keep_logs || code != 0) {
    std::fprintf(stderr, "logs kept in %s\n", dir.c_str());
  } else {
    std::filesystem::remove_all(dir);
  }
  return code;
}

}  // namespace

void RegisterRunCommand(CLI::App& app, RunState& state) {
  auto o = std::make_shared<RunOptions>();
  CLI::App* cmd = app.add_subcommand("run", "Start a local cluster (coordinator + N nodes), generate, stop");
  cmd->add_option("-m,--model", o->model, "GGUF model file")->required();
  cmd->add_option("--nodes", o->nodes, "Node processes to start")->capture_default_str();
  cmd->add_option("-p,--prompt", o->prompt, "Prompt text")->capture_default_str();
  cmd->add_option("-n,--n-predict", o->n_predict, "Tokens to generate")->capture_default_str();
  cmd->add_option("--temp", o->sampling.temperature, "Temperature (0: greedy)")->capture_default_str();
  cmd->add_option("--top-k", o->sampling.top_k, "Top-k (0: off)")->capture_default_str();
  cmd->add_option("--top-p", o->sampling.top_p, "Top-p (1: off)")->capture_default_str();
  cmd->add_option("--min-p", o->sampling.min_p, "Min-p (0: off)")->capture_default_str();
  cmd->add_option("--repeat-penalty", o->sampling.repeat_penalty, "Repetition penalty (1: off)")->capture_default_str();
  cmd->add_option("--repeat-last-n", o->sampling.repeat_last_n, "Tokens the penalty looks back on")->capture_default_str();
  cmd->add_option("--seed", o->seed, "Random seed (default: random)");
  cmd->add_option("-t,--threads", o->threads, "Threads per node (default: all cores)");
  cmd->add_option("--planner", o->planner, "even (every node, by memory) or optimal")->capture_default_str();
  cmd->add_option("--split", o->split, "Layer counts per node, e.g. 2,3");
  cmd->add_option("--wire-dtype", o->wire_dtype, "Activations on the wire: f32 or f16")->capture_default_str();
  cmd->add_option("-c,--ctx-size", o->ctx_size, "Context length (default: the model's)");
  cmd->add_flag("--json", o->json, "Print one JSON object instead of streaming text");
  cmd->add_flag("--stop-at-eos", o->stop_at_eos, "Stop at an end-of-generation token");
  cmd->add_flag("--keep-logs", o->keep_logs, "Keep the processes' logs");
  cmd->callback([o, &state] { state.exit_code = RunCluster(*o); });
}

}  // namespace tandem::cli
