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

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "cli/commands.h"
#include "cli/generation_output.h"
#include "cli/local_cluster.h"
#include "cli/model_loading.h"
#include "cli/process_group.h"
#include "cli/remote_generation.h"

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
  bool tls = false;
  // Serving instead of generating once: the OpenAI-compatible API on this address.
  std::string http;
  std::string api_key_file;
  int64_t sessions = 0;  // 0: the coordinator's default
  int http_max_sessions = 0;
  std::string chat_template;
};

// Reads the port the coordinator wrote to `path` (it serves HTTP before nodes join).
absl::StatusOr<int> ReadPortFile(const std::string& path, LocalCluster& cluster) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  for (;;) {
    std::ifstream in(path);
    int port = 0;
    if (in >> port && port > 0) return port;
    const std::string exited = cluster.CheckExited();
    if (!exited.empty()) return absl::AbortedError(exited);
    if (std::chrono::steady_clock::now() > deadline) {
      return absl::DeadlineExceededError("the coordinator did not report its HTTP port");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

// `tandem run --http`: serves until Ctrl-C or SIGTERM, or until the coordinator exits. A
// node that dies is a failure the cluster rides out (it re-plans on the others), as a
// cluster of machines does; its log is kept.
int Serve(const RunOptions& o, LocalCluster& cluster) {
  auto port = ReadPortFile(cluster.dir() + "/http.port", cluster);
  if (!port.ok()) return ReportError(port.status());
  const std::string host = o.http.substr(0, o.http.rfind(':'));
  std::fprintf(stderr,
               "tandem: serving the OpenAI API on http://%s:%d/v1 (coordinator %s), the "
               "dashboard on http://%s:%d/; Ctrl-C stops\n",
               host.c_str(), *port, cluster.address().c_str(), host.c_str(), *port);
  while (!Interrupted()) {
    const std::string exited = cluster.CheckExited();
    if (!exited.empty()) {
      if (Interrupted()) break;
      cluster.KeepLogs();
      if (exited.rfind("coordinator", 0) != 0) {
        std::fprintf(stderr, "tandem: %s; the cluster goes on without it (logs kept in %s)\n",
                     exited.c_str(), cluster.dir().c_str());
        continue;
      }
      std::fprintf(stderr, "tandem: %s; logs kept in %s\n", exited.c_str(), cluster.dir().c_str());
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::fprintf(stderr, "tandem: stopping the cluster\n");
  return 0;
}

void PrintPlan(const v1::StatusResponse& s) {
  std::fprintf(stderr, "plan (epoch %llu): %d stage(s)\n",
               static_cast<unsigned long long>(s.plan_epoch()), s.stages_size());
  std::fprintf(stderr, "  %-8s %-18s %-12s %12s %14s\n", "node", "address", "layers", "memory MiB",
               "offers MiB");
  for (const auto& st : s.stages()) {
    std::fprintf(stderr, "  %-8s %-18s [%3d, %3d)   %12.1f %14.1f\n", st.node_id().c_str(),
                 st.address().c_str(), st.layer_first(), st.layer_last(),
                 st.memory_bytes() / 1048576.0, st.node_memory_bytes() / 1048576.0);
  }
}

int RunCluster(RunOptions& o) {
  if (o.nodes < 1) return ReportError(absl::InvalidArgumentError("--nodes must be at least 1"));
  auto model = LoadModel(o.model);  // a bad model is one clear error here, not in every child
  if (!model.ok()) return ReportError(model.status());
  if (o.split.empty() && o.planner == "even" && o.nodes > model->hparams.n_layer) {
    return ReportError(absl::InvalidArgumentError(
        absl::StrCat("--nodes ", o.nodes, " is more than the model's ", model->hparams.n_layer,
                     " layers: every node needs a layer")));
  }
  o.sampling.seed = o.seed >= 0 ? static_cast<uint64_t>(o.seed) : std::random_device{}();
  const int hw = static_cast<int>(std::thread::hardware_concurrency());
  // With one session only one stage works at a time, so every node may use every core.
  const int threads = o.threads > 0 ? o.threads : std::max(1, hw);
  InstallChildReaper();
  int code = 0;
  {
    LocalCluster cluster(std::filesystem::read_symlink("/proc/self/exe").string());
    LocalClusterOptions options;
    options.model = o.model;
    options.nodes = o.nodes;
    options.split = o.split;
    options.planner = o.planner;
    options.threads = threads;
    options.tls = o.tls;
    options.coordinator_args = {"--wire-dtype", o.wire_dtype};
    // Progress on stderr, so --json output stays clean: one line redrawn on a terminal,
    // else a line per change.
    const bool terminal = ::isatty(STDERR_FILENO) == 1;
    options.on_progress = [terminal](const std::string& what) {
      std::fprintf(stderr, terminal ? "\r\033[Kcluster: %s" : "cluster: %s\n", what.c_str());
      if (terminal && what.rfind("ready", 0) == 0) std::fputc('\n', stderr);
    };
    if (o.ctx_size > 0)
      options.coordinator_args.insert(options.coordinator_args.end(),
                                      {"--ctx-size", std::to_string(o.ctx_size)});
    auto& args = options.coordinator_args;
    if (o.sessions > 0) args.insert(args.end(), {"--sessions", std::to_string(o.sessions)});
    if (!o.http.empty()) {
      args.insert(args.end(), {"--http", o.http, "--http-port-file", cluster.dir() + "/http.port"});
      if (!o.api_key_file.empty())
        args.insert(args.end(),
                    {"--api-key-file", std::filesystem::absolute(o.api_key_file).string()});
      if (o.http_max_sessions > 0)
        args.insert(args.end(), {"--http-max-sessions", std::to_string(o.http_max_sessions)});
      if (!o.chat_template.empty())
        args.insert(args.end(),
                    {"--chat-template", std::filesystem::absolute(o.chat_template).string()});
    }
    absl::Status s = cluster.Start(options, /*timeout_ms=*/5 * 60 * 1000);
    if (s.ok() && !o.http.empty()) {
      PrintPlan(cluster.status());
      return Serve(o, cluster);
    }
    GenerationOutput out;
    if (s.ok()) {
      PrintPlan(cluster.status());
      out.seed = o.sampling.seed;
      s = RemoteGenerateText(cluster.address(), o.prompt, o.n_predict, o.sampling, o.stop_at_eos,
                             !o.json, &out);
    }
    if (Interrupted()) {
      std::fprintf(stderr, "tandem: interrupted; the cluster is stopped\n");
      return 130;  // the cluster's destructor stops every child and removes its files
    }
    if (!s.ok()) {
      code = ReportError(s);
      cluster.KeepLogs();
      std::fprintf(stderr, "logs kept in %s\n", cluster.dir().c_str());
    } else if (o.json) {
      PrintGenerationJson(out);
    } else {
      PrintGenerationSummary(out);
    }
    if (o.keep_logs && s.ok()) {
      cluster.KeepLogs();
      std::fprintf(stderr, "logs kept in %s\n", cluster.dir().c_str());
    }
  }
  return code;
}

}  // namespace

void RegisterRunCommand(CLI::App& app, RunState& state) {
  auto o = std::make_shared<RunOptions>();
  CLI::App* cmd =
      app.add_subcommand("run", "Start a local cluster (coordinator + N nodes), generate, stop");
  cmd->add_option("-m,--model", o->model, "GGUF model file")->required();
  cmd->add_option("--nodes", o->nodes, "Node processes to start")->capture_default_str();
  cmd->add_option("-p,--prompt", o->prompt, "Prompt text")->capture_default_str();
  cmd->add_option("-n,--n-predict", o->n_predict, "Tokens to generate")->capture_default_str();
  cmd->add_option("--temp", o->sampling.temperature, "Temperature (0: greedy)")
      ->capture_default_str();
  cmd->add_option("--top-k", o->sampling.top_k, "Top-k (0: off)")->capture_default_str();
  cmd->add_option("--top-p", o->sampling.top_p, "Top-p (1: off)")->capture_default_str();
  cmd->add_option("--min-p", o->sampling.min_p, "Min-p (0: off)")->capture_default_str();
  cmd->add_option("--repeat-penalty", o->sampling.repeat_penalty, "Repetition penalty (1: off)")
      ->capture_default_str();
  cmd->add_option("--repeat-last-n", o->sampling.repeat_last_n, "Tokens the penalty looks back on")
      ->capture_default_str();
  cmd->add_option("--seed", o->seed, "Random seed (default: random)");
  cmd->add_option("-t,--threads", o->threads, "Threads per node (default: all cores)");
  cmd->add_option("--planner", o->planner, "even (every node, by memory) or optimal")
      ->capture_default_str();
  cmd->add_option("--split", o->split, "Layer counts per node, e.g. 2,3");
  cmd->add_option("--wire-dtype", o->wire_dtype, "Activations on the wire: f32 or f16")
      ->capture_default_str();
  cmd->add_option("-c,--ctx-size", o->ctx_size, "Context length (default: the model's)");
  cmd->add_flag("--json", o->json, "Print one JSON object instead of streaming text");
  cmd->add_flag("--stop-at-eos", o->stop_at_eos, "Stop at an end-of-generation token");
  cmd->add_flag("--keep-logs", o->keep_logs, "Keep the processes' logs");
  cmd->add_flag("--tls", o->tls,
                "Run the cluster as strangers would: a state directory, nodes joining with the "
                "token, mutual TLS on every link");
  cmd->add_option("--http", o->http,
                  "Serve the OpenAI-compatible API on HOST:PORT until Ctrl-C, instead of "
                  "generating once");
  cmd->add_option("--api-key-file", o->api_key_file,
                  "With --http: API keys, one a line (Authorization: Bearer KEY)");
  cmd->add_option("--sessions", o->sessions, "Concurrent sessions to reserve KV memory for")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--http-max-sessions", o->http_max_sessions,
                  "With --http: generations at once; more get 429 (default: --sessions)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--chat-template", o->chat_template,
                  "With --http: Jinja chat template file replacing the model's");
  cmd->callback([o, &state] { state.exit_code = RunCluster(*o); });
}

}  // namespace tandem::cli
