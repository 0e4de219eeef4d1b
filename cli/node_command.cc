// `tandem node`: serve a shard of layers for a coordinator.
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <cstdio>
#include <exception>
#include <memory>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "api/server.h"
#include "cli/commands.h"
#include "cli/discovery_flags.h"
#include "cli/model_loading.h"
#include "cli/node_weights.h"
#include "cli/signals.h"
#include "cli/token_options.h"
#include "model/fingerprint.h"
#include "model/hparams.h"
#include "net/cluster_join.h"
#include "net/coordinator_client.h"
#include "net/forward_client.h"
#include "net/link_security.h"
#include "net/peer_auth.h"
#include "node/calibration.h"
#include "node/membership.h"
#include "node/node_service.h"
#include "node/stage.h"
#include "security/join_token.h"
#include "security/revocation.h"
#include "telemetry/exposition.h"

namespace tandem::cli {
namespace {

struct NodeCommandOptions {
  std::string coordinator;
  std::string model;
  std::string listen = "127.0.0.1:0";
  std::string advertise;
  int threads = 0;
  uint64_t memory_limit = 0;
  std::string metrics;  // HOST:PORT for /metrics; empty: none
  double session_idle_timeout_s = 300;
  double drain_timeout_s = 30;
  TokenOptions tokens;  // --token / --token-file
  bool insecure = false;
  std::string cache_dir;         // without --model: where fetched tensors live
  double fetch_rate = 0;         // bytes/s; 0: unlimited
  uint64_t cache_max_bytes = 0;  // 0: no limit
  DiscoveryFlags discovery;      // --discover
};

// With a token: joins the cluster (its certificate then secures every link). Without one,
// links are plaintext, allowed on loopback or with --insecure.
absl::Status SetUpSecurity(const NodeCommandOptions& o) {
  if (o.tokens.token.empty() && o.tokens.token_file.empty()) {
    // A coordinator with a state directory would only close every plaintext call: say why
    // now rather than after retrying until the registration's patience runs out.
    if (absl::Status s = ExplainClusterError(o.coordinator, o.tokens,
                                             absl::UnavailableError("plaintext registration"));
        absl::IsUnauthenticated(s)) {
      return s;
    }
    const std::string& exposed = !IsLoopbackAddress(o.listen) ? o.listen : o.coordinator;
    if (!IsLoopbackAddress(exposed)) {
      if (!o.insecure) {
        return absl::FailedPreconditionError(
            absl::StrCat("refusing plaintext links on ", exposed,
                         " without a join token: give --token-file FILE (the coordinator's "
                         "STATE_DIR/join-token), or --insecure on a network you trust completely"));
      }
      std::fprintf(stderr,
                   "tandem node: WARNING: --insecure: plaintext links; anyone on the network "
                   "can send this node frames and read its activations\n");
    }
    return absl::OkStatus();
  }
  auto token = security::JoinTokenFromFlags(o.tokens.token, o.tokens.token_file);
  if (!token.ok()) return token.status();
  absl::Status joined = JoinCluster(o.coordinator, *token, "node");
  if (!joined.ok()) return joined;
  std::fprintf(stderr, "tandem node: joined the cluster at %s as %s\n", o.coordinator.c_str(),
               LocalIdentity().c_str());
  return absl::OkStatus();
}

// The coordinator's revocation list, as each Register or Heartbeat reply carries it: the
// node's peer_auth then refuses those identities (Forward, Configure, Tensors, Ping).
void ApplyRevocations(const google::protobuf::RepeatedPtrField<std::string>& pushed,
                      security::PushedRevocations& revoked) {
  auto added = revoked.Replace({pushed.begin(), pushed.end()});
  if (!added.ok()) {
    std::fprintf(stderr, "tandem node: ignoring the coordinator's revocation list: %s\n",
                 std::string(added.status().message()).c_str());
    return;
  }
  for (const std::string& identity : *added) {
    std::fprintf(stderr, "tandem node: %s is revoked: its calls to this node are refused\n",
                 identity.c_str());
  }
}

// The node's own /metrics, on the HTTP server the coordinator's API uses (cpp-httplib),
// a few workers: scrapers are few. Null when not asked for. (prometheus-cpp's Exposer is
// not used: Debian's civetweb runs its workers on fixed 100 KiB stacks, which its handler's
// formatting overflowed in the ASan build, killing the node at its first scrape.)
absl::StatusOr<std::unique_ptr<api::HttpServer>> ServeMetrics(const std::string& address,
                                                              StageMetrics& metrics) {
  if (address.empty()) return nullptr;
  api::HttpServerOptions options;
  if (absl::Status s = api::ParseHostPort(address, &options.host, &options.port); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--metrics: ", s.message()));
  }
  options.threads = 4;
  options.max_body_bytes = 4096;  // GET only
  auto server = std::make_unique<api::HttpServer>(options);
  server->routes().Get("/metrics", [&metrics](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics.MetricsText(), kPrometheusContentType);
  });
  if (absl::Status s = server->Start(); !s.ok()) {
    return absl::UnavailableError(absl::StrCat("cannot serve metrics: ", s.message()));
  }
  std::fprintf(stderr, "tandem node: metrics at http://%s:%d/metrics\n", options.host.c_str(),
               server->port());
  return server;
}

int RunNode(NodeCommandOptions o) {
  BlockTerminationSignals();
  if (o.coordinator.empty() == !o.discovery.enabled) {
    return ReportError(absl::InvalidArgumentError(
        "give the coordinator's address (--coordinator HOST:PORT) or --discover, not both"));
  }
  if (o.discovery.enabled) {
    // With a model file, only a coordinator of the same model answers; a fetching node
    // takes its cluster's model.
    std::shared_ptr<const GgufFile> own;
    if (!o.model.empty()) {
      auto file = GgufFile::Open(o.model);
      if (!file.ok()) return ReportError(file.status());
      own = std::move(*file);
    }
    // With a join token, only the cluster under the token's CA fits.
    std::string ca_sha256;
    if (!o.tokens.token.empty() || !o.tokens.token_file.empty()) {
      auto token = security::JoinTokenFromFlags(o.tokens.token, o.tokens.token_file);
      if (!token.ok()) return ReportError(token.status());
      ca_sha256 = token->ca_sha256;
    }
    absl::Status found = Discover(o.discovery, own.get(), &o.coordinator, &o.listen, ca_sha256);
    if (!found.ok()) {
      ReportError(found);
      return 2;  // nothing to join: not a crash
    }
  }
  // Joined before anything else reaches the coordinator (fetching weights included).
  if (absl::Status s = SetUpSecurity(o); !s.ok()) {
    ReportError(s);
    return 2;  // refused or unreachable: not a crash
  }
  v1::RegisterRequest req;
  req.set_protocol_version(kProtocolVersion);
  req.set_boot_id(NewBootId());
  auto weights = OpenNodeWeights({.model = o.model,
                                  .cache_dir = o.cache_dir,
                                  .coordinator = o.coordinator,
                                  .fetch_rate = o.fetch_rate,
                                  .cache_max_bytes = o.cache_max_bytes},
                                 &req);
  if (!weights.ok()) return ReportError(weights.status());
  std::shared_ptr<const GgufFile> model = weights->model;
  auto h = ReadHparams(*model);
  if (!h.ok()) return ReportError(h.status());
  const int threads =
      o.threads > 0 ? o.threads : static_cast<int>(std::thread::hardware_concurrency());

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

  auto revoked = std::make_shared<security::PushedRevocations>();
  if (LinksSecure()) {
    SetRevocationCheck(
        [revoked](const std::string& identity) { return revoked->IsRevoked(identity); });
  }
  grpc::EnableDefaultHealthCheckService(true);
  auto results = std::make_shared<ResultsClient>(o.coordinator);
  std::unique_ptr<grpc::Server> server;
  NodeOptions options;
  options.threads = threads;
  options.session_idle_timeout = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(o.session_idle_timeout_s));
  options.set_serving = [&server](bool serving) {
    if (server) server->GetHealthCheckService()->SetServingStatus("tandem.v1.Node", serving);
  };
  UseFetchedStages(*weights, &options);
  NodeService service(model, options, results);
  grpc::ServerBuilder builder;
  int port = 0;
  // Every caller of a node (the coordinator, the stage before) holds a certificate.
  builder.AddListeningPort(o.listen, MakeServerCredentials(/*require_client_certificate=*/true),
                           &port);
  // Nothing a node is sent is larger than a frame. Messages up to twice that are read and
  // refused one by one on the open stream (the sender learns why); larger ones end the
  // stream, refused by gRPC from their length prefix before their bytes are buffered.
  builder.SetMaxReceiveMessageSize(static_cast<int>(2 * (kMaxFrameBytes + kMaxFrameOverheadBytes)));
  builder.SetMaxSendMessageSize(kMaxMessageBytes);
  builder.RegisterService(&service);
  builder.RegisterService(weights->tensors.get());  // peers fetch tensors from this node
  server = builder.BuildAndStart();
  if (!server || port == 0) {
    return ReportError(absl::UnavailableError(absl::StrCat("cannot listen on ", o.listen)));
  }
  server->GetHealthCheckService()->SetServingStatus("tandem.v1.Node", false);
  auto metrics_server = ServeMetrics(o.metrics, service.metrics());
  if (!metrics_server.ok()) {
    server->Shutdown();
    return ReportError(metrics_server.status());
  }
  std::string host = o.listen.substr(0, o.listen.rfind(':'));
  std::string address = !o.advertise.empty() ? o.advertise : absl::StrCat(host, ":", port);
  req.set_address(address);

  Membership membership(
      std::make_shared<CoordinatorClient>(o.coordinator), req,
      [&service, fetcher = weights->fetcher.get()] {
        service.MeasureNextHop();
        Membership::State state{service.plan_epoch(),         service.serving(),
                                service.metrics().Counters(), service.layers_loaded(),
                                service.layers_to_load(),     service.sessions(),
                                service.pending_frames(),     service.stalled_ms()};
        if (fetcher != nullptr) state.fetch = fetcher->Progress();
        return state;
      },
      {},
      [&service, revoked](const v1::HeartbeatResponse& r, const std::string& node_id) {
        ApplyRevocations(r.revoked_identities(), *revoked);
        if (!r.in_plan()) service.Release(r.plan_epoch(), node_id);
      });
  auto registered = membership.Join();
  if (!registered.ok()) {
    server->Shutdown();
    ReportError(ExplainClusterError(o.coordinator, o.tokens, registered.status()));
    return 2;  // refused or unreachable: not a crash
  }
  ApplyRevocations(registered->revoked_identities(), *revoked);
  std::fprintf(stderr, "tandem node: %s serving at %s (%d threads, %.1f GB/s, %.1f GFLOP/s)\n",
               registered->node_id().c_str(), address.c_str(), threads,
               req.profile().bandwidth_gbs(), req.profile().gflops());
  WaitForTermination();
  // Drain: NOT_SERVING at once, then wait until the coordinator's plan has moved this
  // node's layers elsewhere (its sessions replay there), and only then stop serving.
  std::fprintf(stderr, "tandem node: draining\n");
  server->GetHealthCheckService()->SetServingStatus("tandem.v1.Node", false);
  server->GetHealthCheckService()->SetServingStatus("", false);
  const bool drained =
      membership.Drain(std::chrono::milliseconds(static_cast<int64_t>(o.drain_timeout_s * 1000)));
  std::fprintf(stderr, "tandem node: %s; stopping\n",
               drained ? "drained: the plan no longer holds this node"
                       : "the drain timed out (no plan without this node)");
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  return 0;
}

}  // namespace

void RegisterNodeCommand(CLI::App& app, RunState& state) {
  auto o = std::make_shared<NodeCommandOptions>();
  CLI::App* cmd = app.add_subcommand("node", "Serve a shard of a model's layers for a coordinator");
  cmd->add_option("--coordinator", o->coordinator, "Coordinator address HOST:PORT (or --discover)");
  cmd->add_option("-m,--model", o->model,
                  "GGUF model file (the coordinator's model); without it, --cache-dir");
  cmd->add_option("--cache-dir", o->cache_dir,
                  "Without --model: fetch this node's layers from the cluster into DIR (kept "
                  "across restarts)");
  cmd->add_option("--fetch-rate", o->fetch_rate,
                  "Without --model: fetch at most this many bytes per second (default: no limit)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--cache-max-bytes", o->cache_max_bytes,
                  "Without --model: keep the cache under this many bytes by removing the least "
                  "recently used tensors the plan does not need (default: no limit)");
  cmd->add_option("--listen", o->listen, "Address to serve on")->capture_default_str();
  cmd->add_option("--advertise", o->advertise, "Address the other stages reach this node at");
  cmd->add_option("-t,--threads", o->threads, "Threads (default: all cores)");
  cmd->add_option("--memory-limit", o->memory_limit,
                  "Bytes this node offers (default: available memory)");
  cmd->add_option("--metrics", o->metrics,
                  "Serve Prometheus metrics at http://HOST:PORT/metrics (port 0: any)");
  cmd->add_option("--session-idle-timeout", o->session_idle_timeout_s,
                  "Seconds after which a silent session's KV cache is freed")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--drain-timeout", o->drain_timeout_s,
                  "On SIGTERM, seconds to wait for the coordinator to move this node's layers "
                  "before stopping anyway")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  AddTokenOptions(cmd, &o->tokens);
  cmd->add_flag("--insecure", o->insecure,
                "Allow plaintext links off loopback, without a token (a trusted network only)");
  AddDiscoverFlags(cmd, o->discovery);
  cmd->callback([o, &state] { state.exit_code = RunNode(*o); });
}

}  // namespace tandem::cli
