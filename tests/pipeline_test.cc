// The distributed pipeline with real processes and real gRPC on 127.0.0.1: the same
// tokens as llama.cpp and as one process, however the layers are split.
#include <gmock/gmock.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "model/gguf.h"
#include "net/client.h"
#include "net/forward_client.h"
#include "node/local_engine.h"
#include "node/stage.h"
#include "tandem.grpc.pb.h"
#include "tests/golden_support.h"
#include "tests/local_cluster.h"

namespace tandem {
namespace {

using testing::ClusterOptions;
using ::testing::HasSubstr;
using testing::LocalCluster;
using testing::ReadJson;
using testing::ResidentBytes;
using testing::SharedPath;

const std::string kModel = SharedPath("models/stories260K-f32.gguf");

v1::GenerateRequest Request(const std::string& prompt, int n, float temperature, uint64_t seed) {
  return testing::SamplingRequest(prompt, n, temperature, seed);
}

// The single-process engine's tokens for the same request.
std::vector<int32_t> LocalTokens(const std::vector<int32_t>& prompt_ids, int n, float temperature,
                                 uint64_t seed) {
  auto f = GgufFile::Open(kModel);
  std::shared_ptr<const GgufFile> file = std::move(*f);
  auto engine = LocalEngine::Create(file, {/*threads=*/1, /*n_ctx=*/128});
  EXPECT_TRUE(engine.ok()) << engine.status();
  if (!engine.ok()) return {};
  GenerationRequest r;
  r.prompt_ids = prompt_ids;
  r.n_predict = n;
  r.sampling.temperature = temperature;
  r.sampling.seed = seed;
  auto out = (*engine)->Generate(
      r, [](TokenId) { return false; }, [](TokenId) { return true; });
  EXPECT_TRUE(out.ok()) << out.status();
  return out.ok() ? out->ids : std::vector<int32_t>{};
}

ClusterOptions Options(int nodes, const std::string& split = "") {
  ClusterOptions o;
  o.model = kModel;
  o.nodes = nodes;
  o.split = split;
  return o;
}

struct SplitCase {
  int nodes;
  std::string split;
};

class PipelineSplitTest : public ::testing::TestWithParam<SplitCase> {};

TEST_P(PipelineSplitTest, GreedyMatchesReferenceAndSeededMatchesOneProcess) {
  LocalCluster cluster;
  ClusterOptions o;
  o.model = kModel;
  o.nodes = GetParam().nodes;
  o.split = GetParam().split;
  ASSERT_TRUE(cluster.Start(o).ok()) << cluster.Start(o);
  ASSERT_EQ(cluster.status().stages_size(), o.nodes);

  nlohmann::json ref = ReadJson(SharedPath("reference/stories260K-f32.json"));
  for (const auto& p : ref["prompts"]) {
    SCOPED_TRACE(p["id"].get<std::string>());
    auto out = RemoteGenerate(cluster.address(), Request(p["text"], 48, 0.0f, 1), nullptr);
    ASSERT_TRUE(out.ok()) << out.status();
    EXPECT_EQ(out->prompt_ids, p["prompt_ids"].get<std::vector<int32_t>>());
    EXPECT_EQ(out->ids, p["greedy_ids"].get<std::vector<int32_t>>());
  }
  // Seeded sampling: the counter-based draws make every split agree with one process.
  auto sampled =
      RemoteGenerate(cluster.address(), Request("Lily wanted to", 40, 0.9f, 1234), nullptr);
  ASSERT_TRUE(sampled.ok()) << sampled.status();
  EXPECT_EQ(sampled->ids, LocalTokens(sampled->prompt_ids, 40, 0.9f, 1234));
}

INSTANTIATE_TEST_SUITE_P(Splits, PipelineSplitTest,
                         ::testing::Values(SplitCase{1, "5"}, SplitCase{2, "2,3"},
                                           SplitCase{2, "4,1"}, SplitCase{3, "1,2,2"},
                                           SplitCase{3, "2,2,1"}, SplitCase{5, "1,1,1,1,1"}),
                         [](const ::testing::TestParamInfo<SplitCase>& info) {
                           std::string name = std::to_string(info.param.nodes) + "nodes_";
                           for (char c : info.param.split) name += c == ',' ? '_' : c;
                           return name;
                         });

TEST(PipelineTest, EightConcurrentSessionsAreAllCorrect) {
  LocalCluster cluster;
  ASSERT_TRUE(cluster.Start(Options(2, "2,3")).ok());
  const std::vector<std::string> prompts = {"Once upon a time", "The little dog", "Lily wanted to",
                                            "Tom and Sue",      "The sun was",    "A big red ball",
                                            "One day, a bird",  "Mom said"};
  std::vector<absl::StatusOr<RemoteGeneration>> results(prompts.size(),
                                                        absl::UnknownError("not run"));
  std::vector<std::thread> threads;
  for (size_t i = 0; i < prompts.size(); ++i) {
    threads.emplace_back([&, i] {
      results[i] = RemoteGenerate(cluster.address(),
                                  Request(prompts[i], 32, i % 2 ? 0.8f : 0.0f, 77 + i), nullptr);
    });
  }
  for (auto& t : threads) t.join();
  for (size_t i = 0; i < prompts.size(); ++i) {
    ASSERT_TRUE(results[i].ok()) << prompts[i] << ": " << results[i].status();
    EXPECT_EQ(results[i]->ids, LocalTokens(results[i]->prompt_ids, 32, i % 2 ? 0.8f : 0.0f, 77 + i))
        << prompts[i];
  }
}

TEST(PipelineTest, NodeWithAnotherModelIsRefusedWithTheReason) {
  LocalCluster cluster;
  ASSERT_TRUE(cluster.Start(Options(1)).ok());
  pid_t pid = cluster.StartNode(SharedPath("models/stories260K-f16.gguf"));
  int status = 0;
  for (int i = 0; i < 300; ++i) {
    if (::waitpid(pid, &status, WNOHANG) == pid) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(WIFEXITED(status)) << "the refused node did not exit";
  EXPECT_EQ(WEXITSTATUS(status), 2);
  const std::string log = cluster.NodeLog(1);
  EXPECT_THAT(log, HasSubstr("the coordinator refused this node: model mismatch"));
  EXPECT_THAT(log, HasSubstr("stories260K-f16.gguf"));
  // The cluster keeps serving.
  auto out = RemoteGenerate(cluster.address(), Request("Once upon a time", 8, 0.0f, 1), nullptr);
  ASSERT_TRUE(out.ok()) << out.status();
}

// Frames sent straight to a later stage: every malformed one is answered with its code
// on the open stream, and the good session goes on.
TEST(PipelineTest, MalformedFramesGetTheirCodesAndGoodSessionsContinue) {
  LocalCluster cluster;
  ASSERT_TRUE(cluster.Start(Options(2, "2,3")).ok());
  const v1::StatusResponse status = cluster.status();
  const v1::PlanStage& stage = status.stages(1);
  const uint64_t epoch = status.plan_epoch();
  auto stub = v1::Node::NewStub(MakeChannel(stage.address(), ""));
  grpc::ClientContext ctx;
  auto stream = stub->Forward(&ctx);
  const size_t row = 64 * sizeof(float);
  auto frame = [&](uint64_t session, int64_t pos, int n, size_t bytes, uint64_t ep) {
    v1::ActivationFrame f;
    f.set_protocol_version(kProtocolVersion);
    f.set_session_id(session);
    f.set_plan_epoch(ep);
    f.set_position(pos);
    f.set_n_tokens(n);
    f.set_activations(std::string(bytes, '\0'));
    return f;
  };
  ASSERT_TRUE(stream->Write(frame(500, 0, 3, 3 * row, epoch)));        // good
  ASSERT_TRUE(stream->Write(frame(500, 3, 1, row - 8, epoch)));        // wrong shape
  ASSERT_TRUE(stream->Write(frame(500, 3, 1, row, epoch + 7)));        // stale epoch
  ASSERT_TRUE(stream->Write(frame(777, 9, 1, row, epoch)));            // unknown session
  ASSERT_TRUE(stream->Write(frame(500, 5, 1, row, epoch)));            // position gap
  ASSERT_TRUE(stream->Write(frame(500, 3, 5000, 5000 * row, epoch)));  // oversized
  ASSERT_TRUE(stream->Write(frame(500, 3, 1, row, epoch)));            // good, continues
  stream->WritesDone();
  std::vector<v1::FrameReply> replies;
  v1::FrameReply r;
  while (stream->Read(&r)) replies.push_back(r);
  ASSERT_TRUE(stream->Finish().ok());
  // Replies for one session keep its order; other sessions' may come in between.
  ASSERT_EQ(replies.size(), 5u);
  std::vector<v1::FrameReply> ours;
  for (const auto& reply : replies) {
    if (reply.session_id() == 777) {
      EXPECT_EQ(reply.code(), grpc::StatusCode::NOT_FOUND);
      EXPECT_THAT(reply.message(), HasSubstr("unknown session"));
    } else {
      ours.push_back(reply);
    }
  }
  ASSERT_EQ(ours.size(), 4u);
  EXPECT_EQ(ours[0].code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(ours[0].message(), HasSubstr("activation shape mismatch"));
  EXPECT_EQ(ours[1].code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(ours[1].message(), HasSubstr("stale plan epoch"));
  EXPECT_EQ(ours[2].code(), grpc::StatusCode::OUT_OF_RANGE);
  EXPECT_THAT(ours[2].message(), HasSubstr("position gap"));
  EXPECT_EQ(ours[3].code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  // The node still serves real sessions, correctly.
  nlohmann::json ref = ReadJson(SharedPath("reference/stories260K-f32.json"));
  auto out = RemoteGenerate(cluster.address(), Request("Once upon a time", 48, 0.0f, 1), nullptr);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->ids, ref["prompts"][0]["greedy_ids"].get<std::vector<int32_t>>());
}

}  // namespace
}  // namespace tandem

namespace tandem {
namespace {

// A node killed mid-answer: the coordinator re-plans on the survivors, replays the
// session's history, and the answer arrives whole and identical.
TEST(PipelineTest, NodeDeathMidAnswerLosesNothing) {
  LocalCluster cluster;
  ASSERT_TRUE(cluster.Start(Options(3)).ok());
  const pid_t victim = cluster.node_pids()[1];
  int seen = 0;
  auto out = RemoteGenerate(cluster.address(), Request("Once upon a time", 100, 0.0f, 1),
                            [&](int32_t, const std::string&) {
                              if (++seen == 5) ::kill(victim, SIGKILL);
                            });
  ASSERT_TRUE(out.ok()) << out.status() << "\ncoordinator log:\n"
                        << testing::ReadFile(cluster.dir() + "/coordinator.log");
  EXPECT_EQ(out->ids, LocalTokens(out->prompt_ids, 100, 0.0f, 1));
  auto status = RemoteStatus(cluster.address());
  ASSERT_TRUE(status.ok());
  EXPECT_GE(status->plan_epoch(), 2u) << "no re-plan happened";
  EXPECT_EQ(status->stages_size(), 2);
}

}  // namespace
}  // namespace tandem

namespace tandem {
namespace {

// A node holding a quarter of the layers of a 250 MB model keeps only its shard resident.
TEST(PipelineTest, NodeMemoryIsItsShardNotTheModel) {
  const std::string model = "/tmp/tandem-rss-test-" + std::to_string(::getpid()) + ".gguf";
  const std::string cmd =
      testing::TandemBinary() +
      " make-model --n-embd 512 --n-layer 16 --n-head 8 --n-head-kv 4 --n-ff 2048"
      " --type f32 --vocab-from " +
      SharedPath("models/stories260K-f32.gguf") + " -o " + model + " > /dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  const uint64_t file_bytes = std::filesystem::file_size(model);
  {
    LocalCluster cluster;
    ClusterOptions o;
    o.model = model;
    o.nodes = 2;
    o.split = "12,4";
    ASSERT_TRUE(cluster.Start(o).ok());
    auto out = RemoteGenerate(cluster.address(), Request("Once upon a time", 8, 0.0f, 1), nullptr);
    ASSERT_TRUE(out.ok()) << out.status();
    const std::string last_address = cluster.status().stages(1).address();
    pid_t last = 0;
    for (size_t i = 0; i < cluster.node_pids().size(); ++i) {
      if (cluster.NodeLog(i).find("serving at " + last_address) != std::string::npos) {
        last = cluster.node_pids()[i];
      }
    }
    ASSERT_NE(last, 0) << "no node log names " << last_address;
    // Weights of layers [12, 16) plus the output head, in f32.
    const uint64_t shard_bytes =
        4ull * (4 * 512 * 512 + 2 * 256 * 512 + 3 * 512 * 2048) * 4 + 512 * 512 * 4;
    const uint64_t rss = ResidentBytes(last);
    std::printf("[ memory ] file %.1f MiB, shard %.1f MiB, node RSS %.1f MiB\n",
                file_bytes / 1048576.0, shard_bytes / 1048576.0, rss / 1048576.0);
    EXPECT_GT(rss, shard_bytes) << "the shard's weights should be resident";
    EXPECT_LT(rss, shard_bytes + (80ull << 20))
        << "more than the shard plus the runtime is resident";
    EXPECT_LT(rss, file_bytes / 2);
  }
  std::filesystem::remove(model);
}

}  // namespace
}  // namespace tandem

namespace tandem {
namespace {

// The first message of every connection carries the protocol version; a mismatch is
// refused with a reason (registration, shard configuration, frames).
TEST(PipelineTest, ProtocolVersionMismatchIsRefusedWithAReason) {
  LocalCluster cluster;
  ASSERT_TRUE(cluster.Start(Options(1)).ok());

  auto coordinator = v1::Coordinator::NewStub(MakeChannel(cluster.address(), ""));
  v1::RegisterRequest reg;
  reg.set_protocol_version(kProtocolVersion + 98);
  reg.set_address("127.0.0.1:1");
  grpc::ClientContext ctx1;
  v1::RegisterResponse reg_resp;
  ASSERT_TRUE(coordinator->Register(&ctx1, reg, &reg_resp).ok());
  EXPECT_FALSE(reg_resp.accepted());
  EXPECT_THAT(reg_resp.reason(), HasSubstr("protocol version 99 is not supported"));

  auto node = v1::Node::NewStub(MakeChannel(cluster.status().stages(0).address(), ""));
  v1::ConfigureRequest conf;
  conf.set_protocol_version(kProtocolVersion + 98);
  conf.set_layer_first(0);
  conf.set_layer_last(5);
  grpc::ClientContext ctx2;
  v1::ConfigureResponse conf_resp;
  ASSERT_TRUE(node->Configure(&ctx2, conf, &conf_resp).ok());
  EXPECT_FALSE(conf_resp.ok());
  EXPECT_THAT(conf_resp.reason(), HasSubstr("protocol version 99"));
}

}  // namespace
}  // namespace tandem

namespace tandem {
namespace {

// grpc.health.v1 Check for the node's service, by hand-encoded protobuf (the health
// stubs are not in Debian's headers): HealthCheckRequest{service = 1}.
int HealthStatus(const std::string& address) {
  grpc::GenericStub stub(MakeChannel(address, ""));
  const std::string service = "tandem.v1.Node";
  std::string request_bytes = std::string("\x0a", 1) + static_cast<char>(service.size()) + service;
  grpc::Slice slice(request_bytes);
  grpc::ByteBuffer request(&slice, 1), response;
  grpc::ClientContext ctx;
  std::promise<grpc::Status> done;
  stub.UnaryCall(&ctx, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request, &response,
                 [&](grpc::Status s) { done.set_value(s); });
  if (!done.get_future().get().ok()) return -1;
  std::vector<grpc::Slice> slices;
  (void)response.Dump(&slices);
  std::string bytes;
  for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  // HealthCheckResponse{status = 1}: 0x08 then the enum (1 SERVING, 2 NOT_SERVING).
  return bytes.size() == 2 && bytes[0] == 0x08 ? bytes[1] : 0;
}

TEST(PipelineTest, NodesReportHealthAndF16WireKeepsGreedyTokens) {
  LocalCluster cluster;
  ClusterOptions o;
  o.model = kModel;
  o.nodes = 2;
  o.split = "3,2";
  o.coordinator_args = {"--wire-dtype", "f16"};
  ASSERT_TRUE(cluster.Start(o).ok());
  for (const auto& stage : cluster.status().stages()) {
    EXPECT_EQ(HealthStatus(stage.address()), 1) << stage.address() << " is not SERVING";
  }
  // f16 activations between stages round each value to 11 significant bits; with the
  // references' smallest top1-top2 margin at 0.126, greedy ids stay the same.
  nlohmann::json ref = ReadJson(SharedPath("reference/stories260K-f32.json"));
  for (const auto& p : ref["prompts"]) {
    auto out = RemoteGenerate(cluster.address(), Request(p["text"], 48, 0.0f, 1), nullptr);
    ASSERT_TRUE(out.ok()) << out.status();
    EXPECT_EQ(out->ids, p["greedy_ids"].get<std::vector<int32_t>>()) << p["id"];
  }
}

}  // namespace
}  // namespace tandem
