// Every resource bounded, tried as an attacker on the same network would: real processes
// and real gRPC on 127.0.0.1. Each test is one attack from issue 9 and how it is refused.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "base/generation.h"
#include "model/gguf.h"
#include "model/gguf_writer.h"
#include "net/client.h"
#include "net/forward_client.h"
#include "net/frames.h"
#include "node/local_engine.h"
#include "tandem.grpc.pb.h"
#include "tests/golden_support.h"
#include "tests/local_cluster.h"

namespace tandem {
namespace {

using testing::ClusterOptions;
using ::testing::HasSubstr;
using testing::LocalCluster;
using testing::ResidentBytes;
using testing::SharedPath;

const std::string kModel = SharedPath("models/stories260K-f32.gguf");

// Greedy: SamplingRequest's other settings do not apply at temperature 0.
v1::GenerateRequest Greedy(const std::string& prompt, int n) {
  return testing::SamplingRequest(prompt, n, 0, 1);
}

ClusterOptions Options(int nodes, const std::string& split = "") {
  ClusterOptions o;
  o.model = kModel;
  o.nodes = nodes;
  o.split = split;
  return o;
}

bool Alive(pid_t pid) { return ::kill(pid, 0) == 0 && ::waitpid(pid, nullptr, WNOHANG) == 0; }

// The single-process engine's greedy tokens for the same prompt ids.
std::vector<int32_t> LocalGreedy(const std::vector<int32_t>& prompt_ids, int n) {
  auto f = GgufFile::Open(kModel);
  std::shared_ptr<const GgufFile> file = std::move(*f);
  auto engine = LocalEngine::Create(file, {/*threads=*/1, /*n_ctx=*/0});
  EXPECT_TRUE(engine.ok()) << engine.status();
  if (!engine.ok()) return {};
  GenerationRequest r;
  r.prompt_ids = prompt_ids;
  r.n_predict = n;
  r.sampling.temperature = 0;
  auto out = (*engine)->Generate(
      r, [](TokenId) { return false; }, [](TokenId) { return true; });
  EXPECT_TRUE(out.ok()) << out.status();
  return out.ok() ? out->ids : std::vector<int32_t>{};
}

// Attack: 200 concurrent Generate streams against a plan that reserves 8 sessions. The
// node is stopped (SIGSTOP) so that admitted sessions stay in flight while the rest
// arrive: exactly 8 are admitted, 192 get RESOURCE_EXHAUSTED at once, the coordinator's
// memory stays bounded, and once the node runs again the 8 finish correctly.
TEST(BoundsTest, TwoHundredStreamsBeyondTheReservationGetResourceExhausted) {
  LocalCluster cluster;
  ClusterOptions o = Options(1);
  o.coordinator_args = {"--sessions", "8"};
  ASSERT_TRUE(cluster.Start(o).ok());
  const pid_t coordinator = cluster.coordinator_pid();
  const pid_t node = cluster.node_pids()[0];
  const uint64_t rss_before = ResidentBytes(coordinator);
  ASSERT_EQ(::kill(node, SIGSTOP), 0);

  constexpr int kStreams = 200;
  auto stub = v1::Client::NewStub(MakeChannel(cluster.address(), ""));
  struct Call {
    grpc::ClientContext context;
    std::unique_ptr<grpc::ClientReader<v1::GenerateReply>> reader;
    bool admitted = false;
  };
  std::vector<std::unique_ptr<Call>> calls;
  const v1::GenerateRequest request = Greedy("Once upon a time", 24);
  for (int i = 0; i < kStreams; ++i) {
    auto call = std::make_unique<Call>();
    call->context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(110));
    call->reader = stub->Generate(&call->context, request);
    calls.push_back(std::move(call));
  }
  // An admitted stream's first reply is its header (the prompt ids); a refused one ends.
  int refused = 0;
  for (auto& call : calls) {
    v1::GenerateReply header;
    if (call->reader->Read(&header)) {
      EXPECT_GT(header.prompt_ids_size(), 0);
      call->admitted = true;
      continue;
    }
    const grpc::Status s = call->reader->Finish();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
    EXPECT_THAT(s.error_message(), HasSubstr("serves 8 concurrent sessions"));
    ++refused;
  }
  EXPECT_EQ(refused, kStreams - 8);
  EXPECT_TRUE(Alive(coordinator));
  const uint64_t rss_after = ResidentBytes(coordinator);
  std::printf("[ memory ] coordinator RSS %.1f MiB before, %.1f MiB after %d streams\n",
              rss_before / 1048576.0, rss_after / 1048576.0, kStreams);
  EXPECT_LT(rss_after, rss_before + (64ull << 20));

  ASSERT_EQ(::kill(node, SIGCONT), 0);
  std::vector<int32_t> expected;
  for (auto& call : calls) {
    if (!call->admitted) continue;
    std::vector<int32_t> ids, prompt_ids;
    v1::GenerateReply reply;
    while (call->reader->Read(&reply)) {
      if (reply.has_token()) ids.push_back(reply.token());
    }
    const grpc::Status s = call->reader->Finish();
    ASSERT_TRUE(s.ok()) << s.error_message() << "\n"
                        << testing::ReadFile(cluster.dir() + "/coordinator.log");
    if (expected.empty()) expected = ids;
    EXPECT_EQ(ids, expected);
    EXPECT_EQ(ids.size(), 24u);
  }
  // The slots are free again.
  auto again = RemoteGenerate(cluster.address(), Greedy("Once upon a time", 4), nullptr);
  EXPECT_TRUE(again.ok()) << again.status();
}

// Attack: one long frame (more tokens than a batch) and a flood of 8 MiB frames at a node.
// The long frame is refused by its token count; oversized frames are refused by their
// size, before they are queued (gRPC refuses messages past the node's limit from their
// length prefix; frames just under it are refused by the node's reader); the node's
// memory stays near where it was and it goes on serving.
TEST(BoundsTest, FrameFloodIsRefusedAndNodeMemoryStaysBounded) {
  LocalCluster cluster;
  ASSERT_TRUE(cluster.Start(Options(2, "2,3")).ok());
  const v1::StatusResponse status = cluster.status();
  const uint64_t epoch = status.plan_epoch();
  pid_t first_pid = 0;
  for (size_t i = 0; i < cluster.node_pids().size(); ++i) {
    if (cluster.NodeLog(i).find("serving at " + status.stages(0).address()) != std::string::npos) {
      first_pid = cluster.node_pids()[i];
    }
  }
  ASSERT_NE(first_pid, 0);
  const uint64_t rss_before = ResidentBytes(first_pid);
  auto stub = v1::Node::NewStub(MakeChannel(status.stages(0).address(), ""));

  {  // The long frame: 20000 token ids in one frame.
    grpc::ClientContext ctx;
    auto stream = stub->Forward(&ctx);
    v1::ActivationFrame f;
    f.set_protocol_version(kProtocolVersion);
    f.set_session_id(4242);
    f.set_plan_epoch(epoch);
    f.set_n_tokens(20000);
    for (int i = 0; i < 20000; ++i) f.add_tokens(1);
    ASSERT_TRUE(stream->Write(f));
    stream->WritesDone();
    v1::FrameReply reply;
    ASSERT_TRUE(stream->Read(&reply));
    EXPECT_EQ(reply.code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
    EXPECT_THAT(reply.message(), HasSubstr("tokens"));
    while (stream->Read(&reply)) {
    }
    EXPECT_TRUE(stream->Finish().ok());
  }
  {  // Frames just over the frame limit, under gRPC's: refused one by one, stream open.
    grpc::ClientContext ctx;
    auto stream = stub->Forward(&ctx);
    v1::ActivationFrame f;
    f.set_protocol_version(kProtocolVersion);
    f.set_session_id(4243);
    f.set_plan_epoch(epoch);
    f.set_n_tokens(1);
    f.set_activations(std::string(kMaxFrameBytes + kMaxFrameOverheadBytes + 16, 'x'));
    for (int i = 0; i < 32; ++i) ASSERT_TRUE(stream->Write(f));
    stream->WritesDone();
    int refusals = 0;
    v1::FrameReply reply;
    while (stream->Read(&reply)) {
      EXPECT_EQ(reply.code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
      EXPECT_THAT(reply.message(), HasSubstr("exceeds the limit"));
      ++refusals;
    }
    EXPECT_TRUE(stream->Finish().ok());
    EXPECT_EQ(refusals, 32);
  }
  {  // 48 frames of 8 MiB: gRPC ends the stream at the first.
    grpc::ClientContext ctx;
    auto stream = stub->Forward(&ctx);
    v1::ActivationFrame f;
    f.set_protocol_version(kProtocolVersion);
    f.set_session_id(4244);
    f.set_plan_epoch(epoch);
    f.set_n_tokens(1);
    f.set_activations(std::string((8 << 20) - 1024, 'x'));
    int written = 0;
    for (int i = 0; i < 48 && stream->Write(f); ++i) ++written;
    stream->WritesDone();
    v1::FrameReply reply;
    while (stream->Read(&reply)) {
    }
    const grpc::Status s = stream->Finish();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
    std::printf("[ flood ] %d of 48 frames of 8 MiB written before the stream ended: %s\n", written,
                s.error_message().c_str());
  }
  ASSERT_TRUE(Alive(first_pid));
  const uint64_t rss_after = ResidentBytes(first_pid);
  std::printf("[ memory ] node RSS %.1f MiB before, %.1f MiB after the flood\n",
              rss_before / 1048576.0, rss_after / 1048576.0);
  EXPECT_LT(rss_after, rss_before + (100ull << 20));
  // The node still serves, correctly.
  auto out = RemoteGenerate(cluster.address(), Greedy("Once upon a time", 16), nullptr);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->ids, LocalGreedy(out->prompt_ids, 16));
}

// A GGUF like stories260K whose llama.context_length is `context_length`.
std::string ModelWithContextLength(uint64_t context_length) {
  auto f = GgufFile::Open(kModel);
  EXPECT_TRUE(f.ok()) << f.status();
  GgufWriter w;
  for (const auto& [key, value] : (*f)->metadata()) {
    if (key == "llama.context_length") {
      w.AddMetadata(key,
                    GgufValue::Int(GgufValueType::kUint64, static_cast<int64_t>(context_length)));
    } else {
      w.AddMetadata(key, value);
    }
  }
  for (const auto& t : (*f)->tensors()) {
    w.AddTensor(t.name, t.dims, t.type, std::vector<uint8_t>(t.data, t.data + t.size_bytes));
  }
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("tandem-huge-ctx-" + std::to_string(::getpid()) + ".gguf"))
                               .string();
  EXPECT_TRUE(w.WriteFile(path).ok());
  return path;
}

// Attack: a context of 2^59 positions, on the command line or in a GGUF: a clear error
// naming the bound and a nonzero exit, no signal (it used to die with SIGSEGV).
TEST(BoundsTest, HugeContextIsAClearErrorNotACrash) {
  auto generate =
      testing::RunTandem("generate -m " + kModel + " -c 576460752303423488 -p hi -n 2 --temp 0");
  EXPECT_EQ(generate.exit_code, 1) << generate.err;  // -1: killed by a signal
  EXPECT_THAT(generate.err, HasSubstr("-c 576460752303423488 is outside [1, 1048576]"));

  const std::string model = ModelWithContextLength(uint64_t{1} << 59);
  auto from_gguf = testing::RunTandem("generate -m " + model + " -p hi -n 2 --temp 0");
  EXPECT_EQ(from_gguf.exit_code, 1) << from_gguf.err;
  EXPECT_THAT(from_gguf.err, HasSubstr("context length 576460752303423488 is outside"));
  // With -c the same file is usable.
  auto bounded = testing::RunTandem("generate -m " + model + " -c 64 -p hi -n 2 --temp 0");
  EXPECT_EQ(bounded.exit_code, 0) << bounded.err;

  auto coordinator = testing::RunTandem("coordinator -m " + model + " --listen 127.0.0.1:0");
  EXPECT_EQ(coordinator.exit_code, 1) << coordinator.err;
  EXPECT_THAT(coordinator.err, HasSubstr("context length 576460752303423488 is outside"));
  auto run = testing::RunTandem("run -m " + kModel + " --nodes 1 -c 576460752303423488 -n 2");
  EXPECT_NE(run.exit_code, 0);
  EXPECT_NE(run.exit_code, -1) << "killed by a signal";
  std::filesystem::remove(model);
}

// Attack: spraying the coordinator's Results stream with tokens for guessed session ids
// (sequential ones, and random ones) while a user generates. Session ids are random 64-bit
// values, so no guess lands, and the user's answer is exactly the model's.
TEST(BoundsTest, ResultsSprayNeverReachesAUsersAnswer) {
  LocalCluster cluster;
  ASSERT_TRUE(cluster.Start(Options(2, "2,3")).ok());
  std::atomic<bool> stop{false};
  std::atomic<int64_t> sprayed{0};
  std::thread sprayer([&] {
    auto stub = v1::Coordinator::NewStub(MakeChannel(cluster.address(), ""));
    std::mt19937_64 rng(7);
    while (!stop) {
      grpc::ClientContext ctx;
      v1::ResultsAck ack;
      auto writer = stub->Results(&ctx, &ack);
      for (int i = 0; i < 2000 && !stop; ++i) {
        v1::StepResult r;
        // Small sequential ids, as the old coordinator gave out, and random ones.
        r.set_session_id(i % 2 ? rng() : static_cast<uint64_t>(i / 2));
        r.set_plan_epoch(1 + rng() % 3);
        r.set_position(static_cast<int64_t>(rng() % 64));
        r.set_token(static_cast<int32_t>(rng() % 512));
        r.set_node_id("node-0");
        if (!writer->Write(r)) break;
        ++sprayed;
      }
      writer->WritesDone();
      (void)writer->Finish();
    }
  });
  std::vector<absl::StatusOr<RemoteGeneration>> answers;
  for (int i = 0; i < 4; ++i) {
    answers.push_back(RemoteGenerate(cluster.address(), Greedy("Once upon a time", 48), nullptr));
  }
  stop = true;
  sprayer.join();
  std::printf("[ spray ] %lld results sprayed\n", static_cast<long long>(sprayed.load()));
  EXPECT_GT(sprayed.load(), 1000);
  for (const auto& a : answers) {
    ASSERT_TRUE(a.ok()) << a.status();
    EXPECT_EQ(a->ids, LocalGreedy(a->prompt_ids, 48));
  }
}

// Remote prompts are plain text: a control token's text in them is not parsed as the
// token (a template the server applies may put control tokens there; a user may not).
TEST(BoundsTest, SpecialTokenTextInARemotePromptIsPlainText) {
  LocalCluster cluster;
  ASSERT_TRUE(cluster.Start(Options(1)).ok());
  auto out = RemoteGenerate(cluster.address(), Greedy("</s> hi", 1), nullptr);
  ASSERT_TRUE(out.ok()) << out.status();
  const int32_t eos = 2;  // stories260K's </s>
  ASSERT_GT(out->prompt_ids.size(), 2u);
  for (size_t i = 1; i < out->prompt_ids.size(); ++i) EXPECT_NE(out->prompt_ids[i], eos);
}

}  // namespace
}  // namespace tandem
