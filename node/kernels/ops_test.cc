#include "node/kernels/ops.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

namespace tandem {
namespace {

std::vector<float> Random(int64_t n, uint32_t seed, float scale = 3.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// Lengths around the vector widths (8, 16) and the 16-lane unroll.
constexpr int64_t kLengths[] = {1, 2, 7, 8, 15, 16, 17, 31, 33, 100, 1000, 4099};

// Tolerances: relative 1e-5 (float accumulation vs double; exp approximation < 2e-7).
TEST(OpsTest, RmsNorm) {
  for (int64_t n : kLengths) {
    const auto x = Random(n, 1), w = Random(n, 2);
    std::vector<float> out(n);
    RmsNorm(x.data(), w.data(), n, 1e-5f, out.data());
    double ss = 0;
    for (float v : x) ss += double{v} * v;
    const double inv = 1.0 / std::sqrt(ss / n + 1e-5);
    for (int64_t i = 0; i < n; ++i) {
      const double ref = x[i] * inv * w[i];
      ASSERT_NEAR(out[i], ref, 1e-5 * std::fabs(ref) + 1e-6) << n << " " << i;
    }
    std::vector<float> in_place = x;  // aliasing allowed
    RmsNorm(in_place.data(), w.data(), n, 1e-5f, in_place.data());
    EXPECT_EQ(in_place, out);
  }
}

TEST(OpsTest, Softmax) {
  for (int64_t n : kLengths) {
    auto x = Random(n, 3, 10.0f);
    if (n > 3) x[2] = -INFINITY;  // a masked score
    std::vector<double> ref(n);
    double max = -INFINITY, sum = 0;
    for (float v : x) max = std::max(max, double{v});
    for (int64_t i = 0; i < n; ++i) sum += ref[i] = std::exp(x[i] - max);
    Softmax(x.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      ASSERT_NEAR(x[i], ref[i] / sum, 1e-6 + 1e-5 * ref[i] / sum) << n << " " << i;
    }
    if (n > 3) {
      EXPECT_EQ(x[2], 0.0f);
    }
  }
}

TEST(OpsTest, SwiGlu) {
  for (int64_t n : kLengths) {
    const auto g = Random(n, 4, 5.0f), u = Random(n, 5);
    std::vector<float> out(n);
    SwiGlu(g.data(), u.data(), n, out.data());
    for (int64_t i = 0; i < n; ++i) {
      const double ref = g[i] / (1.0 + std::exp(-double{g[i]})) * u[i];
      ASSERT_NEAR(out[i], ref, 1e-5 * std::fabs(ref) + 1e-7) << n << " " << i;
    }
  }
  std::vector<float> big = {-200.0f, 200.0f, 0.0f}, up = {1, 1, 1}, out(3);
  SwiGlu(big.data(), up.data(), 3, out.data());
  EXPECT_NEAR(out[0], 0.0f, 1e-30);
  EXPECT_FLOAT_EQ(out[1], 200.0f);
  EXPECT_EQ(out[2], 0.0f);
}

// The tanh GELU through the fp16 table: within one fp16 step of the float64 formula at
// the fp16-rounded input, exactly 0 below -10 and the identity above 10.
TEST(OpsTest, GeluTanhGlu) {
  const auto gate = Random(4099, 5), up = Random(4099, 6);
  std::vector<float> out(gate.size());
  GeluTanhGlu(gate.data(), up.data(), static_cast<int64_t>(gate.size()), out.data());
  for (size_t i = 0; i < gate.size(); ++i) {
    const double g = gate[i];
    const double gelu = 0.5 * g * (1 + std::tanh(0.7978845608028654 * (g + 0.044715 * g * g * g)));
    const double want = (g <= -10 ? 0.0 : g >= 10 ? g : gelu) * up[i];
    // fp16 input and output rounding: about 2^-10 relative each, plus the slope.
    EXPECT_NEAR(out[i], want, 2e-3 * (std::fabs(g) + 1) * std::fabs(up[i]) + 1e-6) << g;
  }
  const float big[] = {-12.0f, 12.0f}, ones[] = {1.0f, 1.0f};
  float capped[2];
  GeluTanhGlu(big, ones, 2, capped);
  EXPECT_EQ(capped[0], 0.0f);
  EXPECT_EQ(capped[1], 12.0f);
}

TEST(OpsTest, SoftCap) {
  auto x = Random(100, 7, 40.0f);
  const auto before = x;
  SoftCap(x.data(), static_cast<int64_t>(x.size()), 50.0f);
  for (size_t i = 0; i < x.size(); ++i) {
    EXPECT_NEAR(x[i], 50.0 * std::tanh(before[i] / 50.0), 1e-5 * 50);
    EXPECT_LT(std::fabs(x[i]), 50.0f);
  }
}

TEST(OpsTest, DotAndAxpy) {
  for (int64_t n : kLengths) {
    const auto a = Random(n, 6), b = Random(n, 7);
    double ref = 0, mag = 0;
    for (int64_t i = 0; i < n; ++i) {
      ref += double{a[i]} * b[i];
      mag += std::fabs(double{a[i]} * b[i]);
    }
    EXPECT_NEAR(Dot(a.data(), b.data(), n), ref, 1e-6 * mag + 1e-6) << n;
    std::vector<float> y = b;
    Axpy(0.5f, a.data(), y.data(), n);
    for (int64_t i = 0; i < n; ++i) ASSERT_FLOAT_EQ(y[i], b[i] + 0.5f * a[i]);
  }
}

}  // namespace
}  // namespace tandem
