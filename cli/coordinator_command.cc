// `tandem coordinator`: the registry, planner and session driver of a cluster.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "api/dashboard_routes.h"
#include "api/openai_routes.h"
#include "api/server.h"
#include "cli/commands.h"
#include "cli/discovery_flags.h"
#include "cli/model_loading.h"
#include "cli/signals.h"
#include "coordinator/coordinator.h"
#include "coordinator/services.h"
#include "fetch/tensor_service.h"
#include "model/fingerprint.h"
#include "net/link_security.h"
#include "net/node_link.h"
#include "net/peer_auth.h"
#include "security/join_issuer.h"
#include "security/join_token.h"
#include "security/revocation.h"

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
  uint64_t test_corrupt_chunk = 0;  // tests only: fetch/tensor_service.h
  std::string batching = "auto";
  std::string http;  // HOST:PORT of the OpenAI-compatible API; empty: none
  std::string http_port_file;
  std::string api_key_file;
  int http_max_sessions = 0;  // 0: --sessions
  std::string chat_template;
  double stall_timeout_s = 3;
  std::string state_dir;  // the cluster's CA, certificates and join token; empty: plaintext
  bool rotate_token = false;
  bool insecure = false;
  DiscoveryFlags discovery;  // --announce
};

// The cluster's security under --state-dir: the CA and the coordinator's certificate
// (made or reloaded), the join token (printed), revocations consulted on every call.
struct ClusterSecurity {
  std::unique_ptr<security::ClusterCa> ca;
  std::unique_ptr<security::JoinIssuer> issuer;
  std::shared_ptr<security::RevocationList> revoked;
  std::string ca_sha256;  // the CA certificate's SHA-256 (hex): discovery announces it
};

absl::StatusOr<ClusterSecurity> SetUpSecurity(const CoordinatorCommandOptions& o) {
  ClusterSecurity out;
  if (o.rotate_token && o.state_dir.empty()) {
    return absl::InvalidArgumentError("--rotate-token needs --state-dir");
  }
  if (o.state_dir.empty()) {
    if (!IsLoopbackAddress(o.listen)) {
      if (!o.insecure) {
        return absl::FailedPreconditionError(absl::StrCat(
            "refusing to listen on ", o.listen,
            " without --state-dir: anyone who can reach it could join, rewire nodes and read "
            "prompts. Give --state-dir DIR (nodes then join with DIR/join-token), or "
            "--insecure on a network you trust completely"));
      }
      std::fprintf(stderr,
                   "tandem coordinator: WARNING: --insecure: plaintext links on %s; anyone who "
                   "can reach this address can join the cluster and read its traffic\n",
                   o.listen.c_str());
    }
    return out;
  }
  auto ca = security::ClusterCa::OpenOrCreate(o.state_dir);
  if (!ca.ok()) return ca.status();
  auto ca_hash = security::CertificateSha256Hex((*ca)->ca_cert_pem());
  if (!ca_hash.ok()) return ca_hash.status();
  auto token = security::LoadOrCreateJoinToken(o.state_dir, *ca_hash, o.rotate_token);
  if (!token.ok()) return token.status();
  InstallLinkCredentials({security::kCoordinatorIdentity, (*ca)->ca_cert_pem(),
                          (*ca)->coordinator().cert_chain_pem, (*ca)->coordinator().key_pem});
  out.revoked = std::make_shared<security::RevocationList>(o.state_dir);
  SetRevocationCheck([revoked = out.revoked](const std::string& identity) {
    return revoked->IsRevoked(identity);
  });
  out.issuer = std::make_unique<security::JoinIssuer>(o.state_dir, **ca);
  out.ca_sha256 = *ca_hash;
  out.ca = *std::move(ca);
  std::fprintf(stderr,
               "tandem coordinator: mutual TLS under the cluster CA in %s; join token (also in "
               "%s/%s):\n%s\n",
               o.state_dir.c_str(), o.state_dir.c_str(), security::kJoinTokenFile,
               security::FormatJoinToken(*token).c_str());
  return out;
}

// The OpenAI-compatible API over `coordinator`, when --http asks for it.
struct HttpApi {
  std::unique_ptr<api::OpenAiRoutes> routes;
  std::unique_ptr<api::HttpServer> server;
};

absl::StatusOr<HttpApi> StartHttpApi(Coordinator& coordinator, const CoordinatorCommandOptions& o) {
  api::HttpServerOptions server_options;
  absl::Status s = api::ParseHostPort(o.http, &server_options.host, &server_options.port);
  if (!s.ok()) return s;
  if (!o.api_key_file.empty()) {
    auto keys = api::ReadApiKeys(o.api_key_file);
    if (!keys.ok()) return keys.status();
    server_options.api_keys = *std::move(keys);
  }
  const Vocab& vocab = coordinator.tokenizer().vocab();
  auto chat_template = o.chat_template.empty()
                           ? ChatTemplate::FromGguf(coordinator.model_file(), vocab)
                           : ChatTemplate::FromFile(o.chat_template, vocab);
  if (!chat_template.ok()) return chat_template.status();
  api::OpenAiOptions api_options;
  const int64_t max_sessions = o.http_max_sessions > 0 ? o.http_max_sessions : o.sessions;
  constexpr int64_t kMaxHttpSessions = 1024;
  if (max_sessions < 1 || max_sessions > kMaxHttpSessions) {
    return absl::InvalidArgumentError(absl::StrCat("the API admits 1 to ", kMaxHttpSessions,
                                                   " generations at once, not ", max_sessions,
                                                   " (set --http-max-sessions)"));
  }
  api_options.max_sessions = static_cast<int>(max_sessions);
  // Every admitted request holds a worker while it streams; keep some for the rest.
  server_options.threads = api_options.max_sessions + 16;
  HttpApi out;
  out.routes =
      std::make_unique<api::OpenAiRoutes>(coordinator, *std::move(chat_template), api_options);
  out.server = std::make_unique<api::HttpServer>(server_options);
  out.routes->Register(out.server->routes());
  api::RegisterDashboardRoutes(out.server->routes(), coordinator);
  if (s = out.server->Start(); !s.ok()) return s;
  coordinator.set_http_address(absl::StrCat(server_options.host, ":", out.server->port()));
  std::fprintf(
      stderr,
      "tandem coordinator: OpenAI API on http://%s:%d/v1, dashboard on http://%s:%d/ (model %s)\n",
      server_options.host.c_str(), out.server->port(), server_options.host.c_str(),
      out.server->port(), out.routes->model_id().c_str());
  if (!o.http_port_file.empty()) {
    std::string tmp = o.http_port_file + ".tmp";
    std::ofstream(tmp) << out.server->port() << "\n";
    std::rename(tmp.c_str(), o.http_port_file.c_str());
  }
  return out;
}

int RunCoordinator(const CoordinatorCommandOptions& o) {
  BlockTerminationSignals();
  CoordinatorOptions options;
  options.model_path = o.model;
  options.min_nodes = o.min_nodes;
  options.n_ctx = o.ctx_size;
  options.planning.requirements.sessions = o.sessions;
  options.stall_timeout = std::chrono::milliseconds(static_cast<int64_t>(o.stall_timeout_s * 1000));
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
  auto security = SetUpSecurity(o);
  if (!security.ok()) return ReportError(security.status());
  if (security->revoked) {
    options.is_revoked = [revoked = security->revoked](const std::string& identity) {
      return revoked->IsRevoked(identity);
    };
  }
  auto coordinator = Coordinator::Create(options, NewGrpcNodeLink());
  if (!coordinator.ok()) return ReportError(coordinator.status());

  CoordinatorServiceImpl nodes_face(**coordinator, security->issuer.get(), security->revoked);
  ClientServiceImpl clients_face(**coordinator);
  // Nodes without the model file fetch their layers' tensors from here (the digests come
  // from the sidecar the coordinator's fingerprint just wrote).
  auto tensor_file = GgufFile::Open(o.model);
  if (!tensor_file.ok()) return ReportError(tensor_file.status());
  std::shared_ptr<const GgufFile> shared_file = std::move(*tensor_file);
  fetch::TensorService tensors_face(std::make_shared<fetch::ModelFileSource>(
                                        shared_file, LoadOrComputeModelDigests(*shared_file)),
                                    {.corrupt_chunk = o.test_corrupt_chunk});
  grpc::ServerBuilder builder;
  int port = 0;
  // Joiners come without a certificate: each handler checks its caller (net/peer_auth.h).
  builder.AddListeningPort(o.listen, MakeServerCredentials(/*require_client_certificate=*/false),
                           &port);
  builder.RegisterService(&nodes_face);
  builder.RegisterService(&clients_face);
  builder.RegisterService(&tensors_face);
  auto server = builder.BuildAndStart();
  if (!server || port == 0)
    return ReportError(absl::UnavailableError(absl::StrCat("cannot listen on ", o.listen)));
  HttpApi http;
  if (!o.http.empty()) {
    auto started = StartHttpApi(**coordinator, o);
    if (!started.ok()) return ReportError(started.status());
    http = *std::move(started);
  }
  auto announcer = StartAnnouncer(o.discovery, o.listen, port, (*coordinator)->model_file(),
                                  security->ca_sha256);
  if (!announcer.ok()) return ReportError(announcer.status());
  std::fprintf(stderr, "tandem coordinator: serving %s on port %d, waiting for %d node(s)\n",
               o.model.c_str(), port, options.min_nodes);
  if (!o.port_file.empty()) {
    std::string tmp = o.port_file + ".tmp";
    std::ofstream(tmp) << port << "\n";
    std::rename(tmp.c_str(), o.port_file.c_str());
  }
  WaitForTermination();
  if (http.server) http.server->Stop();
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
  // Tests only (no group: not in --help): corrupts the n-th tensor chunk sent.
  cmd->add_option("--test-corrupt-chunk", o->test_corrupt_chunk)->group("");
  cmd->add_option("--batching", o->batching,
                  "auto, lockstep (stages share one machine's cores) or pipelined")
      ->capture_default_str();
  cmd->add_option("--http", o->http,
                  "Serve the OpenAI-compatible API on HOST:PORT (e.g. 127.0.0.1:8080)");
  cmd->add_option("--http-port-file", o->http_port_file,
                  "Write the HTTP port served on to this file");
  cmd->add_option("--api-key-file", o->api_key_file,
                  "API keys, one a line: /v1/ requests need Authorization: Bearer KEY");
  cmd->add_option("--http-max-sessions", o->http_max_sessions,
                  "Generations the API runs at once; more get 429 (default: --sessions)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--chat-template", o->chat_template,
                  "Jinja chat template file replacing the model's (default: the model's, else "
                  "ChatML)");
  cmd->add_option("--stall-timeout", o->stall_timeout_s,
                  "Seconds a session may wait for a token before the stage holding it up is "
                  "fenced and its layers move (raise it for models whose one batch takes longer)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--state-dir", o->state_dir,
                  "Cluster state: CA, certificates, DIR/join-token (made on first use). Every "
                  "link is then mutual TLS and joining takes the token");
  cmd->add_flag("--rotate-token", o->rotate_token,
                "Make a new join token (with --state-dir); the old one stops working");
  cmd->add_flag("--insecure", o->insecure,
                "Allow plaintext links on a non-loopback address (a trusted network only)");
  AddAnnounceFlags(cmd, o->discovery);
  cmd->callback([o, &state] { state.exit_code = RunCoordinator(*o); });
}

}  // namespace tandem::cli
