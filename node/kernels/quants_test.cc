#include "node/kernels/quants.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "base/fp16.h"
#include "model/gguf.h"

namespace tandem {
namespace {

std::vector<float> RandomNormal(int64_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

struct RoundTripCase {
  GgmlType type;
  double max_relative_rmse;  // RMS(dequant - x) / RMS(x) on N(0, 1) data
};

class RoundTripTest : public ::testing::TestWithParam<RoundTripCase> {};

// Tolerances: half a quantization step / sqrt(3) for each format's step on gaussian data,
// with ~30% margin (measured: Q4_0 0.097, Q4_1 0.083, Q5_0 0.048, Q5_1 0.041, Q8_0 0.003,
// Q4_K 0.078, Q5_K 0.039, Q6_K 0.018, F16 3e-4, BF16 2.3e-3; Q8_0 0.0052).
TEST_P(RoundTripTest, ErrorWithinBound) {
  const RoundTripCase c = GetParam();
  const int64_t n = 4096;
  for (float scale : {1.0f, 1e-3f, 300.0f}) {
    const std::vector<float> x = RandomNormal(n, 7, scale);
    std::vector<uint8_t> q(RowBytes(c.type, n));
    QuantizeRowReference(c.type, x.data(), n, q.data());
    std::vector<float> y(n);
    DequantizeRowReference(c.type, q.data(), n, y.data());
    double err = 0, ref = 0;
    for (int64_t i = 0; i < n; ++i) {
      err += (y[i] - x[i]) * (y[i] - x[i]);
      ref += x[i] * x[i];
    }
    EXPECT_LE(std::sqrt(err / ref), c.max_relative_rmse)
        << GgmlTypeName(c.type) << " scale " << scale;
  }
}

TEST_P(RoundTripTest, ZerosStayZero) {
  const GgmlType type = GetParam().type;
  const int64_t n = 512;
  std::vector<float> x(n, 0.0f);
  std::vector<uint8_t> q(RowBytes(type, n));
  QuantizeRowReference(type, x.data(), n, q.data());
  std::vector<float> y(n, 1.0f);
  DequantizeRowReference(type, q.data(), n, y.data());
  for (float v : y) EXPECT_EQ(v, 0.0f);
}

INSTANTIATE_TEST_SUITE_P(
    AllTypes, RoundTripTest,
    ::testing::Values(RoundTripCase{GgmlType::kF32, 0.0}, RoundTripCase{GgmlType::kF16, 5e-4},
                      RoundTripCase{GgmlType::kBF16, 4e-3}, RoundTripCase{GgmlType::kQ8_0, 0.007},
                      RoundTripCase{GgmlType::kQ4_0, 0.13}, RoundTripCase{GgmlType::kQ4_1, 0.11},
                      RoundTripCase{GgmlType::kQ5_0, 0.065}, RoundTripCase{GgmlType::kQ5_1, 0.055},
                      RoundTripCase{GgmlType::kQ4_K, 0.11}, RoundTripCase{GgmlType::kQ5_K, 0.055},
                      RoundTripCase{GgmlType::kQ6_K, 0.025}),
    [](const auto& info) { return std::string(GgmlTypeName(info.param.type)); });

// Hand-built blocks pin the bit layouts (the round trips alone would accept a layout that
// is wrong the same way in both directions).
TEST(LayoutTest, Q4_0NibbleOrder) {
  BlockQ4_0 b;
  b.d = Fp32ToFp16(2.0f);
  for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(j | (15 - j) << 4);
  float y[32];
  DequantizeRowReference(GgmlType::kQ4_0, reinterpret_cast<uint8_t*>(&b), 32, y);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], 2.0f * (j - 8));
    EXPECT_EQ(y[j + 16], 2.0f * (7 - j));
  }
}

TEST(LayoutTest, Q5_0HighBits) {
  BlockQ5_0 b;
  b.d = Fp32ToFp16(1.0f);
  std::memset(b.qs, 0, 16);
  const uint32_t qh = 0x80000001u;  // element 0 and element 31 get bit 4
  std::memcpy(b.qh, &qh, 4);
  float y[32];
  DequantizeRowReference(GgmlType::kQ5_0, reinterpret_cast<uint8_t*>(&b), 32, y);
  EXPECT_EQ(y[0], 0.0f);
  EXPECT_EQ(y[31], 0.0f);
  EXPECT_EQ(y[1], -16.0f);
  EXPECT_EQ(y[16], -16.0f);
}

TEST(LayoutTest, Q4_KScalesAndMins) {
  BlockQ4_K b{};
  b.d = Fp32ToFp16(1.0f);
  b.dmin = Fp32ToFp16(1.0f);
  // Sub-block 1: scale 5, min 3 (plain 6-bit). Sub-block 5: scale 0b110001 = 49 from
  // scales[9] low nibble (1) and the top 2 bits of scales[1] (3); min 0b100010 = 34 from
  // scales[9] high nibble (2) and the top bits of scales[5] (2).
  b.scales[1] = 5 | 3 << 6;
  b.scales[5] = 3 | 2 << 6;
  b.scales[9] = 1 | 2 << 4;
  std::memset(b.qs, 0x21, sizeof(b.qs));  // low nibble 1, high nibble 2
  float y[256];
  DequantizeRowReference(GgmlType::kQ4_K, reinterpret_cast<uint8_t*>(&b), 256, y);
  EXPECT_EQ(y[32], 5.0f * 2 - 3);     // chunk 0, high nibbles: sub-block 1
  EXPECT_EQ(y[160], 49.0f * 2 - 34);  // chunk 2, high nibbles: sub-block 5
  EXPECT_EQ(y[0], 0.0f);              // sub-block 0: scale 0, min 0
}

TEST(LayoutTest, Q6_KOrder) {
  BlockQ6_K b{};
  b.d = Fp32ToFp16(1.0f);
  for (int i = 0; i < 16; ++i) b.scales[i] = static_cast<int8_t>(i + 1);
  // Element 128 + 64 + 3 (second half, third quarter): high nibble of ql[64 + 3], bits 4..5
  // of qh[32 + 3].
  b.ql[64 + 3] = 0x50;      // low 4 bits of the value: 5
  b.qh[32 + 3] = 0x2 << 4;  // high 2 bits: 2 -> q = 37, minus 32 = 5
  float y[256];
  DequantizeRowReference(GgmlType::kQ6_K, reinterpret_cast<uint8_t*>(&b), 256, y);
  EXPECT_EQ(y[128 + 64 + 3], 5.0f * 13);  // sub-block (195 / 16) = 12, scale 13
  EXPECT_EQ(y[128 + 3], -32.0f * 9);      // untouched: q 0 - 32, sub-block 8
}

// Our quantizers against the bytes llama.cpp's quantizer wrote for the stories260K model.
void CompareWithLlamaCpp(const std::string& quantized_file, GgmlType type) {
  auto f32 = GgufFile::Open(std::string(TANDEM_SHARED_DIR) + "/models/stories260K-f32.gguf");
  auto quant = GgufFile::Open(std::string(TANDEM_SHARED_DIR) + "/models/" + quantized_file);
  if (!f32.ok() || !quant.ok()) GTEST_SKIP() << "shared models not found";
  int checked = 0;
  for (const GgufTensor& t : (*quant)->tensors()) {
    if (t.type != type) continue;
    const GgufTensor* ref = (*f32)->FindTensor(t.name);
    ASSERT_NE(ref, nullptr) << t.name;
    const int64_t n = t.n_elements();
    std::vector<uint8_t> ours(RowBytes(type, t.row_length()) * t.n_rows());
    for (int64_t r = 0; r < t.n_rows(); ++r) {
      QuantizeRowReference(type, reinterpret_cast<const float*>(ref->data) + r * t.row_length(),
                           t.row_length(), ours.data() + r * RowBytes(type, t.row_length()));
    }
    std::vector<float> a(n), b(n);
    DequantizeRowReference(type, ours.data(), n, a.data());
    DequantizeRowReference(type, t.data, n, b.data());
    int64_t same = 0;
    for (int64_t i = 0; i < n; ++i) same += a[i] == b[i];
    EXPECT_GE(static_cast<double>(same) / n, 0.999) << t.name;
    ++checked;
  }
  EXPECT_GT(checked, 0);
}

TEST(LlamaCppBytesTest, Q4_0) { CompareWithLlamaCpp("stories260K-q4_0.gguf", GgmlType::kQ4_0); }
TEST(LlamaCppBytesTest, Q8_0) { CompareWithLlamaCpp("stories260K-q8_0.gguf", GgmlType::kQ8_0); }

}  // namespace
}  // namespace tandem
