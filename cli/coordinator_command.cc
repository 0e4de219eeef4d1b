// `tandem coordinator`: the registry, planner and session driver of a cluster.
#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "cli/commands.h"
#include "cli/model_loading.h"
#include "cli/signals.h"
#include "coordinator/coordinator.h"
#include "coordinator/services.h"
#include "net/node_link.h"

namespace tandem::cli {
namespace {

struct CoordinatorCommandOptions {
  std::string model;
  std::string listen = "127.0.0.1:7070";
  int min_nodes = 1;
  std::string planner = "optimal";
  std::string split;
  std::string wire_dtype = "f32";
  int64_t ctx_size = 0;
  int64_t sessions = 8;
  std::string port_file;
  std::string batching = "auto";
};

int RunCoordinator(const CoordinatorCommandOptions& o) {
  BlockTerminationSignals();
  CoordinatorOptions options;
  options.model_path = o.model;
  options.min_nodes = o.min_nodes;
  options.n_ctx = o.ctx_size;
  options.planning.requirements.sessions = o.sessions;
  if (o.batching == "auto") {
    options.batching = BatchingMode::kAuto;
  } else if (o.batching == "lockstep") {
    options.batching = BatchingMode::kLockstep;
  } else if (o.batching == "pipelined") {
    options.batching = BatchingMode::kPipelined;
  } else {
    return ReportError(absl::InvalidArgumentError(
        absl::StrCat("--batching must be auto, lockstep or pipelined, got ", o.batching)));
  }
  if (o.wire_dtype == "f16") {
    options.wire_dtype = v1::WIRE_DTYPE_F16;
  } else if (o.wire_dtype != "f32") {
    return ReportError(absl::InvalidArgumentError(
        absl::StrCat("--wire-dtype must be f32 or f16, got ", o.wire_dtype)));
  }
  if (!o.split.empty()) {
    options.planning.policy = PlanPolicy::kManual;
    for (absl::string_view part : absl::StrSplit(o.split, ',')) {
      int n;
      if (!absl::SimpleAtoi(part, &n) || n < 0) {
        return ReportError(absl::InvalidArgumentError(
            absl::StrCat("--split takes layer counts like 2,3; got '", o.split, "'")));
      }
      options.planning.layer_counts.push_back(n);
    }
    if (options.min_nodes < static_cast<int>(options.planning.layer_counts.size())) {
      options.min_nodes = static_cast<int>(options.planning.layer_counts.size());
    }
  } else if (o.planner == "even") {
    options.planning.policy = PlanPolicy::kEven;
  } else if (o.planner != "optimal") {
    return ReportError(absl::InvalidArgumentError(
        absl::StrCat("--planner must be optimal or even, got ", o.planner)));
  }
  auto coordinator = Coordinator::Create(options, NewGrpcNodeLink());
  if (!coordinator.ok()) return ReportError(coordinator.status());

  CoordinatorServiceImpl nodes_face(**coordinator);
  ClientServiceImpl clients_face(**coordinator);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(o.listen, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&nodes_face);
  builder.RegisterService(&clients_face);
  auto server = builder.BuildAndStart();
  if (!server || port == 0)
    return ReportError(absl::UnavailableError(absl::StrCat("cannot listen on ", o.listen)));
  std::fprintf(stderr, "tandem coordinator: serving %s on port %d, waiting for %d node(s)\n",
               o.model.c_str(), port, options.min_nodes);
  if (!o.port_file.empty()) {
    std::string tmp = o.port_file + ".tmp";
    std::ofstream(tmp) << port << "\n";
    std::rename(tmp.c_str(), o.port_file.c_str());
  }
  WaitForTermination();
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  return 0;
}

}  // namespace

void RegisterCoordinatorCommand(CLI::App& app, RunState& state) {
  auto o = std::make_shared<CoordinatorCommandOptions>();
  CLI::App* cmd = app.add_subcommand("coordinator", "Run a cluster's coordinator");
  cmd->add_option("-m,--model", o->model, "GGUF model file")->required();
  cmd->add_option("--listen", o->listen, "Address to serve on")->capture_default_str();
  cmd->add_option("--min-nodes", o->min_nodes, "Nodes to wait for before planning")
      ->capture_default_str();
  cmd->add_option("--planner", o->planner,
                  "optimal (partition planner) or even (every node, by memory)")
      ->capture_default_str();
  cmd->add_option("--split", o->split,
                  "Layer counts per node in join order, e.g. 2,3 (overrides --planner)");
  cmd->add_option("--wire-dtype", o->wire_dtype, "Activations on the wire: f32 or f16")
      ->capture_default_str();
  cmd->add_option("-c,--ctx-size", o->ctx_size,
                  "Context length per session (default: the model's)");
  cmd->add_option("--sessions", o->sessions, "Concurrent sessions to reserve KV memory for")
      ->capture_default_str();
  cmd->add_option("--port-file", o->port_file, "Write the port served on to this file");
  cmd->add_option("--batching", o->batching,
                  "auto, lockstep (stages share one machine's cores) or pipelined")
      ->capture_default_str();
  cmd->callback([o, &state] { state.exit_code = RunCoordinator(*o); });
}

}  // namespace tandem::cli
