#include "base/generation.h"

#include <gtest/gtest.h>

namespace tandem {
namespace {

GenerationRequest Request(std::vector<TokenId> prompt, int32_t n_predict) {
  GenerationRequest r;
  r.prompt_ids = std::move(prompt);
  r.n_predict = n_predict;
  return r;
}

TEST(ValidateContextLength, BoundsEveryWayAContextIsChosen) {
  EXPECT_TRUE(ValidateContextLength(1).ok());
  EXPECT_TRUE(ValidateContextLength(kMaxContextLength).ok());
  EXPECT_FALSE(ValidateContextLength(0).ok());
  EXPECT_FALSE(ValidateContextLength(-5).ok());
  absl::Status huge = ValidateContextLength(int64_t{1} << 59, "-c");
  EXPECT_EQ(huge.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(huge.message(), "-c 576460752303423488 is outside [1, 1048576] tokens");
}

TEST(ValidateGenerationRequest, NamesEachProblem) {
  EXPECT_TRUE(ValidateGenerationRequest(Request({1, 2}, 3), 8, 10).ok());
  EXPECT_EQ(ValidateGenerationRequest(Request({}, 3), 8, 10).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateGenerationRequest(Request({1}, -1), 8, 10).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateGenerationRequest(Request({1, 10}, 1), 8, 10).code(),
            absl::StatusCode::kInvalidArgument);
  absl::Status too_long = ValidateGenerationRequest(Request({1, 2}, 7), 8, 10);
  EXPECT_EQ(too_long.code(), absl::StatusCode::kOutOfRange);
  EXPECT_NE(too_long.message().find("context of 8"), std::string::npos) << too_long;
  GenerationRequest bad_sampling = Request({1}, 1);
  bad_sampling.sampling.top_p = 2;
  EXPECT_NE(ValidateGenerationRequest(bad_sampling, 8, 10).message().find("top-p"),
            std::string::npos);
}

TEST(GenerationState, AcceptsOnlyTheNextPositionUntilDone) {
  GenerationState s(Request({5, 6}, 2));
  EXPECT_EQ(s.next_position(), 2);
  EXPECT_FALSE(s.Accept(7, 3, false));  // a gap
  EXPECT_TRUE(s.Accept(7, 2, false));
  EXPECT_FALSE(s.Accept(7, 2, false));  // a duplicate
  EXPECT_FALSE(s.done());
  EXPECT_TRUE(s.Accept(8, 3, false));
  EXPECT_TRUE(s.done());
  EXPECT_FALSE(s.Accept(9, 4, false));
  EXPECT_EQ(s.history(), (std::vector<TokenId>{5, 6, 7, 8}));
  EXPECT_EQ(s.n_generated(), 2);
}

TEST(GenerationState, StopsAtEndOfGenerationOnlyWhenAsked) {
  GenerationRequest r = Request({1}, 10);
  GenerationState keep_going(r);
  keep_going.Accept(2, 1, /*is_end_of_generation=*/true);
  EXPECT_FALSE(keep_going.done());
  r.stop_at_eos = true;
  GenerationState stop(r);
  stop.Accept(2, 1, true);
  EXPECT_TRUE(stop.done());
  EXPECT_TRUE(GenerationState(Request({1}, 0)).done());
}

TEST(GenerationState, StopIdsEndGenerationAndSayWhy) {
  GenerationRequest r = Request({1}, 3);
  r.stop_ids = {7};
  GenerationState s(r);
  EXPECT_TRUE(s.Accept(5, 1, false));
  EXPECT_FALSE(s.done());
  EXPECT_TRUE(s.Accept(7, 2, false));
  EXPECT_TRUE(s.done());
  EXPECT_TRUE(s.stopped_by_token());
  GenerationState by_length(Request({1}, 1));
  by_length.Accept(7, 1, false);
  EXPECT_TRUE(by_length.done());
  EXPECT_FALSE(by_length.stopped_by_token());
}

TEST(ValidateSamplingParams, BoundsPenaltiesAndLogprobs) {
  SamplingParams p;
  p.presence_penalty = 2.5f;
  EXPECT_NE(ValidateSamplingParams(p).message().find("presence-penalty"), std::string::npos);
  p.presence_penalty = -2;
  p.frequency_penalty = 2;
  EXPECT_TRUE(ValidateSamplingParams(p).ok());
  p.top_logprobs = kMaxTopLogprobs + 1;
  EXPECT_NE(ValidateSamplingParams(p).message().find("top-logprobs"), std::string::npos);
}

}  // namespace
}  // namespace tandem
