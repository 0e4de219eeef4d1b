#include "node/sampler.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace tandem {
namespace {

SamplingParams Plain(float temperature, uint64_t seed = 7) {
  SamplingParams p;
  p.temperature = temperature;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.seed = seed;
  return p;
}

TEST(SamplerTest, GreedyTakesArgmaxTiesToLowestId) {
  std::vector<float> l = {0.5f, 2.0f, -1.0f, 2.0f};
  EXPECT_EQ(SampleToken(l, Plain(0), {}, 0), 1);
  EXPECT_EQ(Argmax(l), 1);
}

TEST(SamplerTest, SameSeedAndPositionGiveSameToken) {
  std::vector<float> l(100);
  for (int i = 0; i < 100; ++i) l[i] = std::sin(i * 0.37f) * 3;
  for (int64_t pos = 0; pos < 50; ++pos) {
    EXPECT_EQ(SampleToken(l, Plain(1.0f, 42), {}, pos), SampleToken(l, Plain(1.0f, 42), {}, pos));
  }
  int differ = 0;
  for (int64_t pos = 0; pos < 50; ++pos) {
    differ += SampleToken(l, Plain(1.0f, 42), {}, pos) != SampleToken(l, Plain(1.0f, 43), {}, pos);
  }
  EXPECT_GT(differ, 10) << "different seeds should usually draw differently";
}

TEST(SamplerTest, DrawsFollowTheSoftmax) {
  std::vector<float> l = {0.0f, 1.0f, 2.0f};
  double z = std::exp(0.0) + std::exp(1.0) + std::exp(2.0);
  std::vector<int> counts(3);
  const int n = 20000;
  for (int64_t pos = 0; pos < n; ++pos) counts[SampleToken(l, Plain(1.0f, 1), {}, pos)]++;
  for (int i = 0; i < 3; ++i) {
    double expected = std::exp(static_cast<double>(i)) / z;
    EXPECT_NEAR(counts[i] / static_cast<double>(n), expected, 0.015) << "token " << i;
  }
}

TEST(SamplerTest, TopKOneIsGreedy) {
  std::vector<float> l = {0.1f, 0.3f, 0.2f};
  SamplingParams p = Plain(5.0f);
  p.top_k = 1;
  for (int64_t pos = 0; pos < 100; ++pos) EXPECT_EQ(SampleToken(l, p, {}, pos), 1);
}

TEST(SamplerTest, TopPKeepsTheSmallestNucleus) {
  // Probabilities ~ 0.665, 0.245, 0.090: top-p 0.6 keeps only the first.
  std::vector<float> l = {2.0f, 1.0f, 0.0f};
  SamplingParams p = Plain(1.0f);
  p.top_p = 0.6f;
  for (int64_t pos = 0; pos < 200; ++pos) EXPECT_EQ(SampleToken(l, p, {}, pos), 0);
  p.top_p = 0.8f;  // keeps two
  bool saw1 = false;
  for (int64_t pos = 0; pos < 200; ++pos) {
    int32_t t = SampleToken(l, p, {}, pos);
    EXPECT_NE(t, 2);
    saw1 |= t == 1;
  }
  EXPECT_TRUE(saw1);
}

TEST(SamplerTest, MinPDropsUnlikelyTokens) {
  std::vector<float> l = {3.0f, 2.9f, 0.0f};  // p(2)/p(0) = e^-3 ~ 0.05
  SamplingParams p = Plain(1.0f);
  p.min_p = 0.1f;
  for (int64_t pos = 0; pos < 300; ++pos) EXPECT_NE(SampleToken(l, p, {}, pos), 2);
}

TEST(SamplerTest, RepetitionPenaltyDemotesRecentTokens) {
  std::vector<float> l = {2.0f, 1.9f, -1.0f};
  SamplingParams p = Plain(0);
  p.repeat_penalty = 1.5f;
  std::vector<int32_t> recent = {0};
  EXPECT_EQ(SampleToken(l, p, recent, 0), 1);  // 2.0 / 1.5 < 1.9
  p.repeat_last_n = 0;
  EXPECT_EQ(SampleToken(l, p, recent, 0), 0);
}

TEST(SamplerTest, ValidationNamesTheParameter) {
  SamplingParams p;
  p.top_p = 1.5f;
  EXPECT_THAT(std::string(ValidateSamplingParams(p).message()), ::testing::HasSubstr("top-p"));
  p = SamplingParams();
  p.temperature = -1;
  EXPECT_THAT(std::string(ValidateSamplingParams(p).message()),
              ::testing::HasSubstr("temperature"));
  p = SamplingParams();
  p.repeat_penalty = 0;
  EXPECT_THAT(std::string(ValidateSamplingParams(p).message()),
              ::testing::HasSubstr("repeat-penalty"));
  EXPECT_TRUE(ValidateSamplingParams(SamplingParams()).ok());
}

}  // namespace
}  // namespace tandem
