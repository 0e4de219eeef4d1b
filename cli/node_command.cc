// `tandem node`: serve a shard of layers for a coordinator.
#include <cstdio>
#include <memory>
#include <string>
#include <thread>

#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include "absl/strings/str_cat.h"
#include "cli/commands.h"
#include "cli/model_loading.h"
#include "cli/signals.h"
#include "model/fingerprint.h"
#include "model/hparams.h"
#include "net/forward_client.h"
#include "node/calibration.h"
#include "node/node_service.h"
#include "node/stage.h"

namespace tandem::cli {
namespace {

struct NodeCommandOptions {
  std::string coordinator;
  std::string model;
  std::string listen = "127.0.0.1:0";
  std::string advertise;
  int threads = 0;
  uint64_t memory_limit = 0;
};

// Registers, retrying while the coordinator starts. A refusal is final.
absl::StatusOr<v1::RegisterResponse> RegisterWithRetry(v1::Coordinator::Stub& stub,
                                                       const v1::RegisterRequest& req) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  for (;;) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    v1::RegisterResponse resp;
    grpc::Status s = stub.Register(&ctx, req, &resp);
    if (s.ok()) {
      if (!resp.accepted()) return absl::FailedPreconditionError(absl::StrCat("the coordinator refused this node: ", resp.reason()));
      return resp;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      return absl::UnavailableError(absl::StrCat("cannot reach the coordinator: ", s.error_message()));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

int RunNode(const NodeCommandOptions& o) {
  BlockTerminationSignals();
  auto file = GgufFile::Open(o.model);
  if (!file.ok()) return ReportError(file.status());
  std::shared_ptr<const GgufFile> model = std::move(*file);
  auto h = ReadHparams(*model);
  if (!h.ok()) return ReportError(h.status());
  const int threads = o.threads > 0 ? o.threads : static_cast<int>(std::thread::hardware_concurrency());

  v1::RegisterRequest req;
  req.set_protocol_version(kProtocolVersion);
  req.set_model_fingerprint(ModelFingerprint(*model));
  req.set_model_path(o.model);
  {
    ThreadPool pool(threads);
    const GgufTensor* sample = model->FindTensor("blk.0.ffn_up.weight");
    Calibration cal = sample ? Calibrate(sample->type, sample->n_rows(), sample->row_length(), pool)
                             : Calibration{};
    auto* p = req.mutable_profile();
    p->set_memory_bytes(o.memory_limit > 0 ? o.memory_limit : AvailableMemoryBytes());
    p->set_cores(std::thread::hardware_concurrency());
    p->set_threads(threads);
    p->set_bandwidth_gbs(cal.bandwidth_gbs);
    p->set_gflops(cal.gflops);
  }

  grpc::EnableDefaultHealthCheckService(true);
  auto results = std::make_shared<ResultsClient>(o.coordinator);
  std::unique_ptr<grpc::Server> server;
  NodeOptions options;
  options.threads = threads;
  options.set_serving = [&server](bool serving) {
    if (server) server->GetHealthCheckService()->SetServingStatus("tandem.v1.Node", serving);
  };
  NodeService service(model, options, results);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(o.listen, grpc::InsecureServerCredentials(), &port);
  builder.SetMaxReceiveMessageSize(kMaxMessageBytes);
  builder.SetMaxSendMessageSize(kMaxMessageBytes);
  builder.RegisterService(&service);
  server = builder.BuildAndStart();
  if (!server || port == 0) {
    return ReportError(absl::UnavailableError(absl::StrCat("cannot listen on ", o.listen)));
  }
  server->GetHealthCheckService()->SetServingStatus("tandem.v1.Node", false);
  std::string host = o.listen.substr(0, o.listen.rfind(':'));
  std::string address = !o.advertise.empty() ? o.advertise : absl::StrCat(host, ":", port);
  req.set_address(address);

  auto stub = v1::Coordinator::NewStub(MakeChannel(o.coordinator));
  auto registered = RegisterWithRetry(*stub, req);
  if (!registered.ok()) {
    server->Shutdown();
    std::fprintf(stderr, "tandem: error: %s\n", std::string(registered.status().message()).c_str());
    return 2;
  }
  std::fprintf(stderr, "tandem node: %s serving at %s (%d threads, %.1f GB/s, %.1f GFLOP/s)\n",
               registered->node_id().c_str(), address.c_str(), threads,
               req.profile().bandwidth_gbs(), req.profile().gflops());

  volatile bool stop = false;
  std::thread heartbeat([&] {
    std::string node_id = registered->node_id();
    const auto interval = std::chrono::milliseconds(std::max<uint32_t>(100, registered->heartbeat_interval_ms()));
    while (!stop) {
      std::this_thread::sleep_for(interval);
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
      v1::HeartbeatRequest hb;
      hb.set_node_id(node_id);
      hb.set_plan_epoch(service.plan_epoch());
      hb.set_serving(service.serving());
      v1::HeartbeatResponse resp;
      if (stub->Heartbeat(&ctx, hb, &resp).ok() && !resp.known()) {
        auto again = RegisterWithRetry(*stub, req);
        if (again.ok()) node_id = again->node_id();
      }
    }
  });
  WaitForTermination();
  stop = true;
  heartbeat.join();
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  return 0;
}

}  // namespace

void RegisterNodeCommand(CLI::App& app, RunState& state) {
  auto o = std::make_shared<NodeCommandOptions>();
  CLI::App* cmd = app.add_subcommand("node", "Serve a shard of a model's layers for a coordinator");
  cmd->add_option("--coordinator", o->coordinator, "Coordinator address HOST:PORT")->required();
  cmd->add_option("-m,--model", o->model, "GGUF model file (the coordinator's model)")->required();
  cmd->add_option("--listen", o->listen, "Address to serve on")->capture_default_str();
  cmd->add_option("--advertise", o->advertise, "Address the other stages reach this node at");
  cmd->add_option("-t,--threads", o->threads, "Threads (default: all cores)");
  cmd->add_option("--memory-limit", o->memory_limit, "Bytes this node offers (default: available memory)");
  cmd->callback([o, &state] { state.exit_code = RunNode(*o); });
}

}  // namespace tandem::cli
