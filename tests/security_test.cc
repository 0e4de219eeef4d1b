// Issue 9's attacks on a cluster run as strangers would run it (`tandem run --tls`: a
// state directory, nodes joining with the token, mutual TLS on every link), tried from
// this process on 127.0.0.1: each is refused before any handler runs, and the users'
// answers stay exactly the model's. (bounds_test covers the resource attacks.)
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "model/fingerprint.h"
#include "model/gguf.h"
#include "net/client.h"
#include "net/cluster_join.h"
#include "net/frames.h"
#include "net/link_security.h"
#include "security/ca_fetch.h"
#include "security/join_token.h"
#include "security/pki.h"
#include "tandem.grpc.pb.h"
#include "tests/golden_support.h"
#include "tests/local_cluster.h"

namespace tandem {
namespace {

using testing::ClusterOptions;
using ::testing::HasSubstr;
using testing::LocalCluster;
using ::testing::Not;
using testing::SharedPath;

const std::string kModel = SharedPath("models/stories260K-f32.gguf");

// Greedy: SamplingRequest's other settings do not apply at temperature 0.
v1::GenerateRequest Greedy(const std::string& prompt, int n) {
  return testing::SamplingRequest(prompt, n, 0, 1);
}

class SecurityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ClusterOptions o;
    o.model = kModel;
    o.nodes = 2;
    o.split = "2,3";
    o.tls = true;
    absl::Status s = cluster_.Start(o);
    ASSERT_TRUE(s.ok()) << s;
    client_identity_ = LocalIdentity();
    auto token = security::JoinTokenFromFlags("", cluster_.token_file());
    ASSERT_TRUE(token.ok()) << token.status();
    token_ = *token;
    auto ca = security::FetchCaCertificate(cluster_.address(), token_.ca_sha256);
    ASSERT_TRUE(ca.ok()) << ca.status();
    ca_pem_ = *ca;
    // What every user should get, before any attack.
    auto reference = RemoteGenerate(cluster_.address(), Greedy("Once upon a time", 24), nullptr);
    ASSERT_TRUE(reference.ok()) << reference.status();
    reference_ = reference->ids;
  }
  void TearDown() override { InstallLinkCredentials({}); }

  // The answer a user gets now, as a client of the cluster.
  std::vector<int32_t> Answer() {
    auto out = RemoteGenerate(cluster_.address(), Greedy("Once upon a time", 24), nullptr);
    EXPECT_TRUE(out.ok()) << out.status();
    return out.ok() ? out->ids : std::vector<int32_t>{};
  }
  // A channel that checks the coordinator but shows no certificate: a stranger on the
  // network, or anyone who only has the CA (it is public: every handshake shows it).
  std::shared_ptr<grpc::Channel> StrangerChannel(const std::string& address) {
    return MakeJoinChannel(address, ca_pem_);
  }
  // Joins as another member (node or client): a machine that holds the token.
  void JoinAs(const std::string& role) {
    absl::Status s = JoinCluster(cluster_.address(), token_, role);
    ASSERT_TRUE(s.ok()) << s;
  }
  std::string CoordinatorLog() { return testing::ReadFile(cluster_.dir() + "/coordinator.log"); }
  // The coordinator's refusals (its log also holds the token it printed at start).
  std::string Refusals() {
    std::string out;
    for (absl::string_view line : absl::StrSplit(CoordinatorLog(), '\n')) {
      if (absl::StrContains(line, "refused")) absl::StrAppend(&out, line, "\n");
    }
    return out;
  }

  LocalCluster cluster_;
  security::JoinToken token_;
  std::string ca_pem_;
  std::string client_identity_;
  std::vector<int32_t> reference_;
};

// Attack: a fake node with the victim's fingerprint (the model file is public) and a
// profile of 1e6 GB/s, to take every layer. Without the token it cannot register at all;
// guessing the secret is refused and logged without echoing it; the plan is unchanged.
TEST_F(SecurityTest, FakeNodeWithAStolenFingerprintCannotRegister) {
  auto file = GgufFile::Open(kModel);
  ASSERT_TRUE(file.ok());
  v1::RegisterRequest fake;
  fake.set_protocol_version(kProtocolVersion);
  fake.set_address("127.0.0.1:1");
  fake.set_model_fingerprint(ModelFingerprint(**file));
  fake.mutable_profile()->set_memory_bytes(1ull << 40);
  fake.mutable_profile()->set_bandwidth_gbs(1e6);
  fake.mutable_profile()->set_gflops(1e6);
  // In plaintext the coordinator does not even answer.
  {
    auto stub = v1::Coordinator::NewStub(
        grpc::CreateChannel(cluster_.address(), grpc::InsecureChannelCredentials()));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(3));
    v1::RegisterResponse resp;
    EXPECT_FALSE(stub->Register(&ctx, fake, &resp).ok());
  }
  // Over TLS without a certificate: UNAUTHENTICATED.
  auto stub = v1::Coordinator::NewStub(StrangerChannel(cluster_.address()));
  {
    grpc::ClientContext ctx;
    v1::RegisterResponse resp;
    grpc::Status s = stub->Register(&ctx, fake, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << s.error_message();
    EXPECT_FALSE(resp.accepted());
  }
  // A guessed secret: PERMISSION_DENIED, and neither the reply nor the log repeats it.
  {
    const std::string guess(64, '7');
    auto key = security::NewPrivateKeyPem();
    auto csr = security::NewCsrPem(*key);
    v1::JoinRequest join;
    join.set_protocol_version(kProtocolVersion);
    join.set_secret(guess);
    join.set_csr_pem(*csr);
    join.set_role("node");
    grpc::ClientContext ctx;
    v1::JoinResponse resp;
    grpc::Status s = stub->Join(&ctx, join, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
    EXPECT_THAT(s.error_message(), Not(HasSubstr(guess)));
    EXPECT_TRUE(resp.cert_chain_pem().empty());
    EXPECT_THAT(Refusals(), HasSubstr("refused a join"));
    EXPECT_THAT(Refusals(), Not(HasSubstr(guess)));
    EXPECT_THAT(Refusals(), Not(HasSubstr(token_.secret)));
  }
  // The status is closed to strangers too (it lists addresses, hardware, the model).
  {
    grpc::ClientContext ctx;
    v1::StatusResponse resp;
    EXPECT_EQ(stub->Status(&ctx, v1::StatusRequest(), &resp).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
    EXPECT_EQ(resp.n_nodes(), 0);
  }
  auto status = RemoteStatus(cluster_.address());
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->n_nodes(), 2);
  EXPECT_EQ(status->plan_epoch(), 1u);
  EXPECT_EQ(Answer(), reference_);
}

// Attack: an unauthenticated Configure that changes a node's layers, next hop and context
// to stream a user's activations elsewhere. A stranger cannot finish the handshake (nodes
// require a certificate); a client or another node is PERMISSION_DENIED. The plan serves
// on, and the node's log names the refused peer.
TEST_F(SecurityTest, RogueConfigureIsRefused) {
  auto status = RemoteStatus(cluster_.address());
  ASSERT_TRUE(status.ok()) << status.status();
  const std::string node_address = status->stages(0).address();
  v1::ConfigureRequest rogue;
  rogue.set_protocol_version(kProtocolVersion);
  rogue.set_plan_epoch(99);
  rogue.set_layer_first(0);
  rogue.set_layer_last(5);
  rogue.set_next_hop("127.0.0.1:1");
  rogue.set_n_ctx(64);
  {
    auto stub = v1::Node::NewStub(StrangerChannel(node_address));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(3));
    v1::ConfigureResponse resp;
    EXPECT_FALSE(stub->Configure(&ctx, rogue, &resp).ok());
    EXPECT_FALSE(resp.ok());
  }
  for (const std::string role : {"client", "node"}) {
    JoinAs(role);
    auto stub = v1::Node::NewStub(MakeChannel(node_address, status->nodes(0).identity()));
    grpc::ClientContext ctx;
    v1::ConfigureResponse resp;
    grpc::Status s = stub->Configure(&ctx, rogue, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << role << s.error_message();
    EXPECT_FALSE(resp.ok());
  }
  // The channel checked the node's own identity; a wrong expectation fails the handshake.
  {
    auto stub = v1::Node::NewStub(MakeChannel(node_address, "node-0000000000000000"));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(3));
    v1::PingReply reply;
    EXPECT_EQ(stub->Ping(&ctx, v1::PingRequest(), &reply).error_code(),
              grpc::StatusCode::UNAVAILABLE);
  }
  EXPECT_THAT(cluster_.NodeLog(0) + cluster_.NodeLog(1), HasSubstr("refused Configure from"));
  auto after = RemoteStatus(cluster_.address());
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(after->ready());
  EXPECT_EQ(after->plan_epoch(), 1u);
  EXPECT_EQ(Answer(), reference_);
}

// Attack: spraying the Results stream (and a first stage's Forward stream) with tokens
// for a user's session. Strangers and clients are refused outright; a member node that is
// not the plan's last stage cannot report tokens, nor heartbeat as another node, nor
// Forward to a stage whose upstream it is not.
TEST_F(SecurityTest, ResultsSprayAndForeignFramesAreRefused) {
  auto status = RemoteStatus(cluster_.address());
  ASSERT_TRUE(status.ok());
  auto spray = [&](v1::Coordinator::Stub& stub) {
    grpc::ClientContext ctx;
    v1::ResultsAck ack;
    auto writer = stub.Results(&ctx, &ack);
    for (int i = 0; i < 100; ++i) {
      v1::StepResult r;
      r.set_session_id(static_cast<uint64_t>(i));
      r.set_plan_epoch(1);
      r.set_position(i);
      r.set_token(42);
      r.set_node_id(status->stages(1).node_id());
      if (!writer->Write(r)) break;
    }
    writer->WritesDone();
    return writer->Finish();
  };
  {
    auto stub = v1::Coordinator::NewStub(StrangerChannel(cluster_.address()));
    EXPECT_EQ(spray(*stub).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  }
  {
    auto stub = v1::Coordinator::NewStub(MakeChannel(cluster_.address(), ""));
    EXPECT_EQ(spray(*stub).error_code(), grpc::StatusCode::PERMISSION_DENIED);  // a client
  }
  JoinAs("node");
  auto stub = v1::Coordinator::NewStub(MakeChannel(cluster_.address(), ""));
  // Results for a live session: it must be in flight while the spray arrives.
  std::thread user([&] { EXPECT_EQ(Answer(), reference_); });
  grpc::Status sprayed = spray(*stub);
  user.join();
  EXPECT_EQ(sprayed.error_code(), grpc::StatusCode::PERMISSION_DENIED) << sprayed.error_message();
  {
    grpc::ClientContext ctx;
    v1::HeartbeatRequest hb;
    hb.set_node_id(status->stages(0).node_id());
    v1::HeartbeatResponse resp;
    ASSERT_TRUE(stub->Heartbeat(&ctx, hb, &resp).ok());
    EXPECT_FALSE(resp.known());  // the record is bound to the other node's certificate
  }
  {
    // The first stage takes frames only from the coordinator.
    std::string first_identity;
    for (const auto& n : status->nodes()) {
      if (n.node_id() == status->stages(0).node_id()) first_identity = n.identity();
    }
    auto node = v1::Node::NewStub(MakeChannel(status->stages(0).address(), first_identity));
    grpc::ClientContext ctx;
    auto rw = node->Forward(&ctx);
    rw->WritesDone();
    grpc::Status s = rw->Finish();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
  }
  EXPECT_THAT(CoordinatorLog(), HasSubstr("refused Results from"));
  EXPECT_EQ(Answer(), reference_);
}

// Token and certificate lifecycle: a rotated token no longer joins; a revoked node leaves
// the cluster at the coordinator's next tick, which re-plans without it and still answers
// correctly.
TEST_F(SecurityTest, RotatedTokenAndRevokedNode) {
  auto rotated = testing::RunTandem("cluster rotate-token --state-dir " + cluster_.state_dir());
  ASSERT_EQ(rotated.exit_code, 0) << rotated.err;
  absl::Status old = JoinCluster(cluster_.address(), token_, "client", std::chrono::seconds(2));
  EXPECT_EQ(old.code(), absl::StatusCode::kPermissionDenied) << old;
  auto fresh = security::ParseJoinToken(rotated.out);
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  EXPECT_TRUE(JoinCluster(cluster_.address(), *fresh, "client").ok());

  auto status = RemoteStatus(cluster_.address());
  ASSERT_TRUE(status.ok());
  const std::string victim = status->nodes(1).identity();
  ASSERT_THAT(victim, HasSubstr("node-"));
  auto revoked =
      testing::RunTandem("cluster revoke --state-dir " + cluster_.state_dir() + " " + victim);
  ASSERT_EQ(revoked.exit_code, 0) << revoked.err;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  bool replanned = false;
  while (!replanned && std::chrono::steady_clock::now() < deadline) {
    auto s = RemoteStatus(cluster_.address());
    replanned = s.ok() && s->ready() && s->n_nodes() == 1 && s->nodes(0).identity() != victim;
    if (!replanned) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(replanned);
  EXPECT_THAT(CoordinatorLog(), HasSubstr(victim + ") is revoked: it leaves the cluster"));
  EXPECT_EQ(Answer(), reference_);
}

// Revocation reaches the nodes: a member node (this process, joined with the token) may
// Ping the nodes and read their tensor manifests; once revoked, every node refuses it
// (PERMISSION_DENIED, logged with the peer and the reason) as soon as a heartbeat reply
// brings the coordinator's list: Ping, Tensors, Forward and Configure alike. The cluster
// keeps serving.
TEST_F(SecurityTest, NodesRefuseARevokedIdentity) {
  auto status = RemoteStatus(cluster_.address());
  ASSERT_TRUE(status.ok()) << status.status();
  ASSERT_EQ(status->nodes_size(), 2);
  JoinAs("node");
  const std::string me = LocalIdentity();
  ASSERT_THAT(me, HasSubstr("node-"));
  auto ping = [&](const v1::NodeInfo& node) {
    auto stub = v1::Node::NewStub(MakeChannel(node.address(), node.identity()));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    v1::PingReply reply;
    return stub->Ping(&ctx, v1::PingRequest(), &reply);
  };
  auto manifest = [&](const v1::NodeInfo& node) {
    auto stub = v1::Tensors::NewStub(MakeChannel(node.address(), node.identity()));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    v1::ManifestRequest request;
    request.set_protocol_version(kProtocolVersion);
    v1::ManifestResponse response;
    return stub->Manifest(&ctx, request, &response);
  };
  for (const v1::NodeInfo& node : status->nodes()) {
    grpc::Status s = ping(node);
    EXPECT_TRUE(s.ok()) << node.identity() << ": " << s.error_message();
    s = manifest(node);
    EXPECT_TRUE(s.ok()) << node.identity() << ": " << s.error_message();
  }

  auto revoked =
      testing::RunTandem("cluster revoke --state-dir " + cluster_.state_dir() + " " + me);
  ASSERT_EQ(revoked.exit_code, 0) << revoked.err;
  // Heartbeats are 500 ms apart: the list reaches both nodes well within 10 s.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  bool refused = false;
  while (!refused && std::chrono::steady_clock::now() < deadline) {
    refused = true;
    for (const v1::NodeInfo& node : status->nodes()) {
      refused = refused && ping(node).error_code() == grpc::StatusCode::PERMISSION_DENIED;
    }
    if (!refused) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(refused) << "the nodes still answer a revoked identity";
  for (const v1::NodeInfo& node : status->nodes()) {
    grpc::Status s = ping(node);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
    EXPECT_THAT(s.error_message(), HasSubstr(me + " is revoked"));
    s = manifest(node);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
    EXPECT_THAT(s.error_message(), HasSubstr(me + " is revoked"));
    {
      auto stub = v1::Node::NewStub(MakeChannel(node.address(), node.identity()));
      grpc::ClientContext ctx;
      auto rw = stub->Forward(&ctx);
      rw->WritesDone();
      s = rw->Finish();
      EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
      EXPECT_THAT(s.error_message(), HasSubstr(me + " is revoked"));
    }
    {
      auto stub = v1::Node::NewStub(MakeChannel(node.address(), node.identity()));
      grpc::ClientContext ctx;
      v1::ConfigureRequest rogue;
      rogue.set_protocol_version(kProtocolVersion);
      v1::ConfigureResponse resp;
      s = stub->Configure(&ctx, rogue, &resp);
      EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
      EXPECT_THAT(s.error_message(), HasSubstr(me + " is revoked"));
    }
  }
  for (int i = 0; i < 2; ++i) {
    const std::string log = cluster_.NodeLog(i);
    EXPECT_THAT(log, HasSubstr(me + " is revoked: its calls to this node are refused"));
    EXPECT_THAT(log, HasSubstr("refused Ping from ipv4:127.0.0.1:"));
    EXPECT_THAT(log, HasSubstr(": " + me + " is revoked"));
  }
  // The nodes still serve the plan: a client (not revoked) gets the same answer.
  JoinAs("client");
  auto after = RemoteStatus(cluster_.address());
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_TRUE(after->ready());
  EXPECT_EQ(after->plan_epoch(), 1u);
  EXPECT_EQ(Answer(), reference_);
}

// A client command without the token, or with one the coordinator refuses (rotated, or
// another cluster's), is told what to do instead of a raw gRPC error; with the current
// token it works.
TEST_F(SecurityTest, ClientsAreToldAboutTheToken) {
  const std::string at = " --coordinator " + cluster_.address();
  const std::vector<std::string> commands = {"status" + at, "plan" + at,
                                             "generate" + at + " -p Once -n 2 --temp 0"};
  for (const std::string& command : commands) {
    auto r = testing::RunTandem(command);
    EXPECT_NE(r.exit_code, 0) << command;
    EXPECT_THAT(r.err, HasSubstr("this cluster requires a join token: pass --token-file (the "
                                 "coordinator wrote it to <state-dir>/join-token)"))
        << command;
  }
  // A node is told at once too (rather than after retrying its registration).
  auto node = testing::RunTandem("node -m " + kModel + at + " -t 1");
  EXPECT_EQ(node.exit_code, 2);
  EXPECT_THAT(node.err, HasSubstr("this cluster requires a join token: pass --token-file"));
  const std::string old_token = cluster_.dir() + "/old-token";
  {
    std::ofstream out(old_token);
    out << security::FormatJoinToken(token_) << "\n";
  }
  ASSERT_EQ(::chmod(old_token.c_str(), 0600), 0);
  auto works = testing::RunTandem("status" + at + " --token-file " + old_token);
  EXPECT_EQ(works.exit_code, 0) << works.err;
  auto rotated = testing::RunTandem("cluster rotate-token --state-dir " + cluster_.state_dir());
  ASSERT_EQ(rotated.exit_code, 0) << rotated.err;
  for (const std::string& command : commands) {
    auto r = testing::RunTandem(command + " --token-file " + old_token);
    EXPECT_NE(r.exit_code, 0) << command;
    EXPECT_THAT(r.err, HasSubstr("refused this join token: it is wrong, from another cluster, or "
                                 "was replaced by `tandem cluster rotate-token`"))
        << command;
    EXPECT_THAT(r.err, Not(HasSubstr(token_.secret)));
  }
  auto current = testing::RunTandem("status" + at + " --token-file " + cluster_.token_file());
  EXPECT_EQ(current.exit_code, 0) << current.err;
}

// Safe defaults: off loopback, plaintext needs --insecure (nothing is bound when refused).
TEST(SecurityDefaultsTest, PlaintextOffLoopbackIsRefused) {
  auto coordinator = testing::RunTandem("coordinator -m " + kModel + " --listen 0.0.0.0:0");
  EXPECT_NE(coordinator.exit_code, 0);
  EXPECT_THAT(coordinator.err, HasSubstr("without --state-dir"));
  auto node =
      testing::RunTandem("node -m " + kModel + " --coordinator 127.0.0.1:1 --listen 0.0.0.0:0");
  EXPECT_NE(node.exit_code, 0);
  EXPECT_THAT(node.err, HasSubstr("without a join token"));
}

}  // namespace
}  // namespace tandem
