// A Forward stream opened before its peer was revoked: the node runs the frames it took
// before, and refuses every later frame on the same stream (PERMISSION_DENIED, "<identity>
// is revoked", logged once per stream) without running it. In one process, with real
// mutual TLS on 127.0.0.1: a cluster CA in a temporary directory, certificates for the
// coordinator, the upstream node and this node, each installed in turn for its calls.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "model/gguf.h"
#include "net/frames.h"
#include "net/link_security.h"
#include "net/peer_auth.h"
#include "node/node_service.h"
#include "security/pki.h"
#include "tandem.grpc.pb.h"

namespace tandem {
namespace {

const std::string kModel = std::string(TANDEM_SHARED_DIR) + "/models/stories260K-f32.gguf";
constexpr char kUpstream[] = "node-aaaa0000aaaa0000";
constexpr char kThisNode[] = "node-bbbb0000bbbb0000";

LinkCredentials Issue(const security::ClusterCa& ca, const std::string& identity) {
  auto key = security::NewPrivateKeyPem();
  EXPECT_TRUE(key.ok()) << key.status();
  auto csr = security::NewCsrPem(*key);
  EXPECT_TRUE(csr.ok()) << csr.status();
  auto chain = ca.Issue(*csr, identity);
  EXPECT_TRUE(chain.ok()) << chain.status();
  return {identity, ca.ca_cert_pem(), *chain, *key};
}

// The last stage's input for one token: n_embd activations (any values run).
v1::ActivationFrame Frame(uint64_t session, int64_t position, int n_embd) {
  v1::ActivationFrame f;
  f.set_protocol_version(kProtocolVersion);
  f.set_session_id(session);
  f.set_plan_epoch(1);
  f.set_position(position);
  f.set_n_tokens(1);
  f.set_dtype(v1::WIRE_DTYPE_F32);
  std::vector<float> x(n_embd, 0.25f);
  f.set_activations(std::string(reinterpret_cast<const char*>(x.data()), x.size() * sizeof(float)));
  f.set_sample(true);
  f.mutable_sampling()->set_temperature(0);
  f.mutable_sampling()->set_top_p(1);
  f.mutable_sampling()->set_repeat_penalty(1);
  return f;
}

TEST(ForwardRevocationTest, AnOpenStreamsFramesAreRefusedOnceItsPeerIsRevoked) {
  char dir_template[] = "/tmp/tandem-revocation-XXXXXX";
  ASSERT_NE(::mkdtemp(dir_template), nullptr);
  const std::string dir = dir_template;
  auto ca = security::ClusterCa::OpenOrCreate(dir);
  ASSERT_TRUE(ca.ok()) << ca.status();
  const LinkCredentials coordinator{security::kCoordinatorIdentity, (*ca)->ca_cert_pem(),
                                    (*ca)->coordinator().cert_chain_pem,
                                    (*ca)->coordinator().key_pem};
  const LinkCredentials upstream = Issue(**ca, kUpstream);
  const LinkCredentials this_node = Issue(**ca, kThisNode);

  auto file = GgufFile::Open(kModel);
  ASSERT_TRUE(file.ok()) << file.status() << " (the shared test data is required)";
  const int n_embd = 64;  // stories260K
  InstallLinkCredentials(this_node);
  NodeService service(std::shared_ptr<const GgufFile>(std::move(*file)), NodeOptions{},
                      /*results=*/nullptr);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", MakeServerCredentials(true), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_TRUE(server && port > 0);
  const std::string address = "127.0.0.1:" + std::to_string(port);

  // The coordinator makes this node the last stage, [3, 5), fed by kUpstream.
  InstallLinkCredentials(coordinator);
  {
    auto stub = v1::Node::NewStub(MakeChannel(address, kThisNode));
    v1::ConfigureRequest r;
    r.set_protocol_version(kProtocolVersion);
    r.set_plan_epoch(1);
    r.set_layer_first(3);
    r.set_layer_last(5);
    r.set_n_ctx(64);
    r.set_node_id("node-2");
    r.set_upstream_identity(kUpstream);
    grpc::ClientContext ctx;
    v1::ConfigureResponse response;
    grpc::Status s = stub->Configure(&ctx, r, &response);
    ASSERT_TRUE(s.ok()) << s.error_message();
    ASSERT_TRUE(response.ok()) << response.reason();
  }

  // The upstream opens its stream; a frame on it runs.
  InstallLinkCredentials(upstream);
  auto stub = v1::Node::NewStub(MakeChannel(address, kThisNode));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));  // no hang
  auto stream = stub->Forward(&ctx);
  ASSERT_TRUE(stream->Write(Frame(1, 0, n_embd)));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (service.metrics().Counters().frames() < 1 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(service.metrics().Counters().frames(), 1u) << "the upstream's frame did not run";

  // Revoked (as a heartbeat reply would tell the node): the same stream's next frames are
  // refused, each with a reply, and none runs.
  SetRevocationCheck([](const std::string& identity) { return identity == kUpstream; });
  ::testing::internal::CaptureStderr();
  ASSERT_TRUE(stream->Write(Frame(1, 1, n_embd)));
  ASSERT_TRUE(stream->Write(Frame(1, 2, n_embd)));
  for (int64_t position : {1, 2}) {
    v1::FrameReply reply;
    ASSERT_TRUE(stream->Read(&reply));
    EXPECT_EQ(reply.session_id(), 1u);
    EXPECT_EQ(reply.position(), position);
    EXPECT_EQ(reply.code(), grpc::StatusCode::PERMISSION_DENIED);
    EXPECT_EQ(reply.message(), std::string(kUpstream) + " is revoked");
  }
  stream->WritesDone();
  grpc::Status finished = stream->Finish();
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_TRUE(finished.ok()) << finished.error_message();
  EXPECT_EQ(service.metrics().Counters().frames(), 1u) << "a revoked peer's frame ran";
  const std::string line =
      std::string("refused Forward frames on an open stream: ") + kUpstream + " is revoked";
  const size_t first = log.find(line);
  EXPECT_NE(first, std::string::npos) << log;
  EXPECT_EQ(log.find(line, first + 1), std::string::npos) << "logged more than once: " << log;

  SetRevocationCheck(nullptr);
  InstallLinkCredentials({});
  server->Shutdown();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace tandem
