// A stage's frame validation and batching, without the network: each malformed frame
// gets its own status code, and the good sessions go on unharmed.
#include "node/stage.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <limits>
#include <random>

#include "node/local_engine.h"

namespace tandem {
namespace {

using ::testing::HasSubstr;

constexpr const char* kModel = TANDEM_SHARED_DIR "/models/stories260K-f32.gguf";

std::shared_ptr<const GgufFile> OpenModel() {
  auto f = GgufFile::Open(kModel);
  EXPECT_TRUE(f.ok()) << f.status();
  return std::move(*f);
}

std::unique_ptr<Stage> MakeStage(std::shared_ptr<const GgufFile> file, int first, int last,
                                 uint64_t epoch = 3) {
  StageConfig c;
  c.plan_epoch = epoch;
  c.range = {first, last};
  c.n_ctx = 128;
  auto s = Stage::Create(std::move(file), c, 1);
  EXPECT_TRUE(s.ok()) << s.status();
  return std::move(*s);
}

v1::ActivationFrame TokenFrame(uint64_t session, int64_t position, std::vector<int32_t> tokens,
                               uint64_t epoch = 3) {
  v1::ActivationFrame f;
  f.set_protocol_version(kProtocolVersion);
  f.set_session_id(session);
  f.set_plan_epoch(epoch);
  f.set_position(position);
  f.set_n_tokens(static_cast<int32_t>(tokens.size()));
  for (int32_t t : tokens) f.add_tokens(t);
  return f;
}

v1::ActivationFrame ActivationFrameOf(uint64_t session, int64_t position, int n_tokens,
                                      size_t bytes, uint64_t epoch = 3) {
  v1::ActivationFrame f;
  f.set_protocol_version(kProtocolVersion);
  f.set_session_id(session);
  f.set_plan_epoch(epoch);
  f.set_position(position);
  f.set_n_tokens(n_tokens);
  f.set_activations(std::string(bytes, '\0'));
  return f;
}

TEST(StageTest, RejectsEachMalformedFrameWithItsCode) {
  auto file = OpenModel();
  auto first = MakeStage(file, 0, 2);
  auto later = MakeStage(file, 2, 5);
  const size_t row = 64 * sizeof(float);

  EXPECT_TRUE(first->Admit(TokenFrame(1, 0, {1, 403, 407})).ok());
  // Stale epoch.
  auto s = first->Admit(TokenFrame(1, 3, {261}, /*epoch=*/2));
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), HasSubstr("stale plan epoch 2"));
  // Unknown session.
  s = first->Admit(TokenFrame(99, 5, {261}));
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(s.message()), HasSubstr("unknown session"));
  // Position gap.
  s = first->Admit(TokenFrame(1, 7, {261}));
  EXPECT_EQ(s.code(), absl::StatusCode::kOutOfRange);
  EXPECT_THAT(std::string(s.message()), HasSubstr("expected position 3, got 7"));
  // Token id outside the vocabulary.
  s = first->Admit(TokenFrame(1, 3, {9999}));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  // Wrong shape on a later stage.
  s = later->Admit(ActivationFrameOf(1, 0, 2, row * 2 - 4));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("activation shape mismatch"));
  // Oversized.
  s = later->Admit(ActivationFrameOf(1, 0, 5000, row * 5000));
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  // Past the context.
  s = later->Admit(ActivationFrameOf(1, 120, 10, row * 10));
  EXPECT_EQ(s.code(), absl::StatusCode::kOutOfRange);
  // Protocol version.
  auto f = TokenFrame(1, 3, {261});
  f.set_protocol_version(99);
  EXPECT_EQ(first->Admit(f).code(), absl::StatusCode::kFailedPrecondition);
  // After all that, the good session continues where it was.
  EXPECT_TRUE(first->Admit(TokenFrame(1, 3, {261})).ok());
}

// Two stages fed by hand give the tokens a single process gives, with two sessions
// batched together at every step.
TEST(StageTest, SplitStagesBatchSessionsAndMatchOneProcess) {
  auto file = OpenModel();
  auto a = MakeStage(file, 0, 2);
  auto b = MakeStage(file, 2, 5);
  auto h = ReadHparams(*file);
  auto engine = LocalEngine::Create(file, {/*threads=*/1, /*n_ctx=*/128});
  ASSERT_TRUE(engine.ok()) << engine.status();

  const std::vector<std::vector<int32_t>> prompts = {{1, 403, 407, 261, 378},
                                                     {1, 291, 376, 400, 428}};
  std::vector<std::vector<int32_t>> expected;
  for (const auto& p : prompts) {
    GenerationRequest r;
    r.prompt_ids = p;
    r.n_predict = 12;
    r.sampling.temperature = 0;
    auto out = (*engine)->Generate(
        r, [](TokenId) { return false; }, [](TokenId) { return true; });
    ASSERT_TRUE(out.ok());
    expected.push_back(out->ids);
  }

  std::vector<std::vector<int32_t>> history = prompts;
  std::vector<int64_t> fed(2, 0);
  for (int step = 0; step < 12; ++step) {
    std::vector<v1::ActivationFrame> in;
    for (int s = 0; s < 2; ++s) {
      std::vector<int32_t> tokens(history[s].begin() + fed[s], history[s].end());
      auto f = TokenFrame(s + 10, fed[s], tokens);
      f.set_sample(true);
      f.mutable_sampling()->set_temperature(0);
      f.mutable_sampling()->set_top_p(1);
      f.mutable_sampling()->set_repeat_penalty(1);
      ASSERT_TRUE(a->Admit(f).ok());
      fed[s] = static_cast<int64_t>(history[s].size());
      in.push_back(f);
    }
    auto mid = a->RunBatch({&in[0], &in[1]});
    for (auto& o : mid) ASSERT_TRUE(b->Admit(o.frame).ok());
    auto out = b->RunBatch({&mid[0].frame, &mid[1].frame});
    for (int s = 0; s < 2; ++s) {
      ASSERT_TRUE(out[s].has_token);
      EXPECT_EQ(out[s].token_position, static_cast<int64_t>(history[s].size()));
      history[s].push_back(out[s].token);
    }
  }
  for (int s = 0; s < 2; ++s) {
    std::vector<int32_t> generated(history[s].begin() + prompts[s].size(), history[s].end());
    EXPECT_EQ(generated, expected[s]) << "session " << s;
  }
  (void)h;
}

TEST(StageTest, RejectsAbsurdConfiguration) {
  auto file = OpenModel();
  StageConfig c;
  c.range = {0, 5};
  c.n_ctx = int64_t{1} << 40;
  auto s = Stage::Create(file, c, 1);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.status().message()), HasSubstr("context length"));
  c.n_ctx = 128;
  c.range = {3, 9};
  s = Stage::Create(file, c, 1);
  EXPECT_THAT(std::string(s.status().message()), HasSubstr("is not within the model's 5 layers"));
}

// Random frames, mostly wrong in some field: each is either refused with a status or
// runs; nothing crashes (run this under the sanitizers to see memory errors too).
TEST(StageTest, RandomFramesNeverCrash) {
  auto file = OpenModel();
  auto first = MakeStage(file, 0, 2);
  auto later = MakeStage(file, 2, 5);
  std::mt19937 rng(7);
  auto pick = [&](std::initializer_list<int64_t> values) {
    std::vector<int64_t> v(values);
    return v[std::uniform_int_distribution<size_t>(0, v.size() - 1)(rng)];
  };
  int admitted = 0;
  for (int i = 0; i < 3000; ++i) {
    v1::ActivationFrame f;
    f.set_protocol_version(static_cast<uint32_t>(pick({kProtocolVersion, kProtocolVersion, 0, 2})));
    f.set_session_id(static_cast<uint64_t>(pick({1, 2, 3, -1})));
    f.set_plan_epoch(static_cast<uint64_t>(pick({3, 3, 3, 2, -1})));
    f.set_position(pick({0, 0, 1, 5, 127, 128, -1, int64_t{1} << 62}));
    const int64_t n = pick({1, 2, 3, 0, -4, 200, 1 << 30});
    f.set_n_tokens(static_cast<int32_t>(n));
    const bool to_first = rng() % 2;
    if (to_first) {
      const int64_t ids = pick({n, n, 0, 1});
      for (int64_t t = 0; t < ids && t < 300; ++t)
        f.add_tokens(static_cast<int32_t>(pick({1, 400, 511, 512, -3})));
    } else {
      f.set_dtype(static_cast<v1::WireDtype>(pick({0, 0, 1, 7})));
      const int64_t bytes = pick({n * 256, n * 128, 0, 13});
      if (bytes > 0 && bytes < (1 << 22))
        f.set_activations(std::string(static_cast<size_t>(bytes), '\x3c'));
    }
    f.set_sample(rng() % 2);
    f.mutable_sampling()->set_temperature(static_cast<float>(pick({0, 1, -1})));
    f.mutable_sampling()->set_top_p(static_cast<float>(pick({1, 0, 2})));
    f.mutable_sampling()->set_repeat_penalty(1);
    f.set_end_session(rng() % 20 == 0);
    Stage& stage = to_first ? *first : *later;
    if (stage.Admit(f).ok()) {
      ++admitted;
      if (!f.end_session()) stage.RunBatch({&f});
    }
  }
  EXPECT_GT(admitted, 50) << "the generator should produce some valid frames too";
}

TEST(StageTest, EndSessionFreesIt) {
  auto file = OpenModel();
  auto a = MakeStage(file, 0, 5);
  ASSERT_TRUE(a->Admit(TokenFrame(1, 0, {1, 2})).ok());
  EXPECT_EQ(a->n_sessions(), 1u);
  v1::ActivationFrame end;
  end.set_protocol_version(kProtocolVersion);
  end.set_session_id(1);
  end.set_plan_epoch(3);
  end.set_end_session(true);
  ASSERT_TRUE(a->Admit(end).ok());
  EXPECT_EQ(a->n_sessions(), 0u);
  EXPECT_EQ(a->Admit(TokenFrame(1, 2, {5})).code(), absl::StatusCode::kNotFound);
}

// Every count from the wire is checked before it sizes anything (issue 9).
TEST(StageTest, BoundsEveryCountBeforeUse) {
  auto file = OpenModel();
  auto first = MakeStage(file, 0, 5);
  // A position near INT64_MAX: refused, and position + n is never computed in overflow.
  auto s = first->Admit(TokenFrame(1, std::numeric_limits<int64_t>::max() - 1, {1, 2, 3}));
  EXPECT_EQ(s.code(), absl::StatusCode::kOutOfRange) << s;
  // More tokens than one frame may carry (its activations would pass the frame limit).
  std::vector<int32_t> many(kMaxFrameTokens + 1, 5);
  s = first->Admit(TokenFrame(2, 0, many));
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("tokens per frame"));
  // More recent tokens than the repetition penalty may look back on.
  v1::ActivationFrame f = TokenFrame(3, 0, {1});
  for (int i = 0; i <= kMaxRepeatLastN; ++i) f.add_recent_tokens(1);
  EXPECT_EQ(first->Admit(f).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(first->n_sessions(), 0u);
}

TEST(StageTest, KvCacheSizesAreCheckedArithmetic) {
  EXPECT_EQ(KvCache::Create(1 << 30, int64_t{1} << 40, int64_t{1} << 20).status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(KvCache::Create(2, -1, 64).status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_FALSE(KvCache::BytesFor(4096, int64_t{1} << 59, 1 << 20).ok());
  auto small = KvCache::Create(2, 16, 8);
  ASSERT_TRUE(small.ok()) << small.status();
  EXPECT_EQ((*small)->keys(1) - (*small)->keys(0), 16 * 8);
  EXPECT_EQ(*KvCache::BytesFor(2, 16, 8), 2u * 2 * 16 * 8 * sizeof(float));
}

TEST(StageTest, IdleSessionsExpire) {
  auto file = OpenModel();
  StageConfig c;
  c.plan_epoch = 3;
  c.range = {0, 5};
  c.n_ctx = 128;
  c.session_idle_timeout = std::chrono::seconds(10);
  auto stage = Stage::Create(file, c, 1);
  ASSERT_TRUE(stage.ok()) << stage.status();
  ASSERT_TRUE((*stage)->Admit(TokenFrame(1, 0, {1, 2})).ok());
  ASSERT_TRUE((*stage)->Admit(TokenFrame(2, 0, {1})).ok());
  const auto now = std::chrono::steady_clock::now();
  EXPECT_EQ((*stage)->ExpireIdle(now + std::chrono::seconds(5)), 0u);
  EXPECT_EQ((*stage)->n_sessions(), 2u);
  EXPECT_EQ((*stage)->ExpireIdle(now + std::chrono::seconds(11)), 2u);
  EXPECT_EQ((*stage)->n_sessions(), 0u);
  EXPECT_EQ((*stage)->Admit(TokenFrame(1, 2, {5})).code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace tandem
