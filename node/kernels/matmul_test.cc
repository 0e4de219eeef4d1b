#include "node/kernels/matmul.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "node/kernels/prepared_matrix.h"
#include "node/kernels/quants.h"
#include "node/kernels/vec_dot.h"

namespace tandem {
namespace {

constexpr GgmlType kTypes[] = {GgmlType::kF32,  GgmlType::kF16,  GgmlType::kBF16, GgmlType::kQ8_0,
                               GgmlType::kQ4_0, GgmlType::kQ4_1, GgmlType::kQ5_0, GgmlType::kQ5_1,
                               GgmlType::kQ4_K, GgmlType::kQ5_K, GgmlType::kQ6_K};

std::vector<float> RandomNormal(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

std::vector<KernelIsa> AvailableIsas() {
  std::vector<KernelIsa> isas;
  for (KernelIsa isa : {KernelIsa::kScalar, KernelIsa::kAvx2, KernelIsa::kAvx512}) {
    if (KernelIsaAvailable(isa)) isas.push_back(isa);
  }
  return isas;
}

// Error allowed for each output: what rounding the activation to the kernel's input format
// can cause (half a step of 8-bit blocks: amax / 254 per element, or the f16 / bf16
// relative rounding), plus float summation-order error (1e-5 of sum |w x|).
std::vector<double> ErrorBounds(GgmlType type, const std::vector<float>& w, const float* x,
                                int64_t rows, int64_t cols) {
  const int64_t block =
      (type == GgmlType::kQ4_K || type == GgmlType::kQ5_K || type == GgmlType::kQ6_K) ? 256 : 32;
  std::vector<double> x_err(cols);
  for (int64_t b = 0; b < cols / block; ++b) {
    double amax = 0;
    for (int64_t i = 0; i < block; ++i) amax = std::max(amax, std::fabs(double{x[b * block + i]}));
    for (int64_t i = 0; i < block; ++i) {
      const double xi = std::fabs(x[b * block + i]);
      switch (type) {
        case GgmlType::kF32:
          x_err[b * block + i] = 0;
          break;
        case GgmlType::kF16:
          x_err[b * block + i] = xi * 1e-3;
          break;
        case GgmlType::kBF16:
          x_err[b * block + i] = xi * 8e-3;
          break;
        default:
          x_err[b * block + i] = amax / 254 * 1.01 + amax * 1e-3;  // +f16 scale rounding
      }
    }
  }
  std::vector<double> bounds(rows);
  for (int64_t r = 0; r < rows; ++r) {
    double q = 0, mag = 0;
    for (int64_t c = 0; c < cols; ++c) {
      q += std::fabs(w[r * cols + c]) * x_err[c];
      mag += std::fabs(w[r * cols + c] * x[c]);
    }
    bounds[r] = q + 1e-5 * mag + 1e-6;
  }
  return bounds;
}

struct Shape {
  int64_t rows, cols, n_batch;
};

void CheckAgainstReference(GgmlType type, const Shape& s, KernelIsa isa, ThreadPool& pool,
                           bool prepared) {
  SCOPED_TRACE(std::string(GgmlTypeName(type)) + " " + KernelIsaName(isa) + " rows " +
               std::to_string(s.rows) + " cols " + std::to_string(s.cols) + " batch " +
               std::to_string(s.n_batch) + (prepared ? " prepared" : ""));
  const std::vector<float> w_f32 = RandomNormal(s.rows * s.cols, 1);
  const std::vector<uint8_t> w_bytes = QuantizeMatrix(type, w_f32.data(), s.rows, s.cols);
  const WeightMatrix w{type, s.rows, s.cols, w_bytes.data()};
  // The reference multiplies the dequantized weights, so only activation rounding differs.
  std::vector<float> w_deq(s.rows * s.cols);
  for (int64_t r = 0; r < s.rows; ++r) DequantizeRow(w, r, w_deq.data() + r * s.cols);
  const std::vector<float> x = RandomNormal(s.n_batch * s.cols, 2);
  std::vector<float> y(s.n_batch * s.rows, NAN);
  if (prepared) {
    auto p = Prepare(w);
    ASSERT_TRUE(p.ok()) << p.status();
    MatMul(*p, x.data(), s.n_batch, y.data(), pool);
  } else {
    MatMul(w, x.data(), s.n_batch, y.data(), pool, isa);
  }
  for (int64_t b = 0; b < s.n_batch; ++b) {
    const std::vector<double> bounds =
        ErrorBounds(type, w_deq, x.data() + b * s.cols, s.rows, s.cols);
    for (int64_t r = 0; r < s.rows; ++r) {
      double ref = 0;
      for (int64_t c = 0; c < s.cols; ++c) ref += double{w_deq[r * s.cols + c]} * x[b * s.cols + c];
      ASSERT_NEAR(y[b * s.rows + r], ref, bounds[r]) << "b " << b << " r " << r;
    }
  }
}

TEST(MatMulTest, EveryTypeEveryIsaRaggedShapes) {
  ThreadPool pool(2);
  // Rows and batch sizes that are not multiples of any vector width or tile; cols are
  // multiples of 256 so every block size fits.
  const Shape shapes[] = {{1, 256, 1},  {7, 256, 1}, {37, 512, 1}, {130, 768, 1},
                          {19, 256, 3}, {5, 512, 7}, {33, 256, 8}, {21, 512, 13}};
  for (GgmlType type : kTypes) {
    ASSERT_TRUE(MatMulSupports(type));
    for (KernelIsa isa : AvailableIsas()) {
      for (const Shape& s : shapes) CheckAgainstReference(type, s, isa, pool, false);
    }
  }
}

TEST(MatMulTest, SimdMatchesScalarClosely) {
  // Same quantized activation, same integer sums: only float summation order differs.
  ThreadPool pool(1);
  for (GgmlType type : kTypes) {
    const int64_t rows = 45, cols = 1024;
    const std::vector<float> w_f32 = RandomNormal(rows * cols, 3);
    const std::vector<uint8_t> w_bytes = QuantizeMatrix(type, w_f32.data(), rows, cols);
    const WeightMatrix w{type, rows, cols, w_bytes.data()};
    const std::vector<float> x = RandomNormal(cols, 4);
    std::vector<float> y_ref(rows);
    MatMul(w, x.data(), 1, y_ref.data(), pool, KernelIsa::kScalar);
    for (KernelIsa isa : AvailableIsas()) {
      std::vector<float> y(rows);
      MatMul(w, x.data(), 1, y.data(), pool, isa);
      for (int64_t r = 0; r < rows; ++r) {
        // Sums of ~1000 terms of size ~1: float reassociation error well under 1e-3.
        EXPECT_NEAR(y[r], y_ref[r], 1e-3 + 1e-5 * std::fabs(y_ref[r]))
            << GgmlTypeName(type) << " " << KernelIsaName(isa) << " r " << r;
      }
    }
  }
}

TEST(MatMulTest, PreparedMatchesPlain) {
  ThreadPool pool(2);
  for (GgmlType type : kTypes) {
    CheckAgainstReference(type, {67, 512, 1}, BestKernelIsa(), pool, true);
    CheckAgainstReference(type, {67, 512, 9}, BestKernelIsa(), pool, true);
  }
}

TEST(MatMulTest, PreparedRaggedRowsWideMatrix) {
  ThreadPool pool(2);
  for (GgmlType type : {GgmlType::kQ4_0, GgmlType::kQ8_0, GgmlType::kQ4_K, GgmlType::kQ6_K}) {
    CheckAgainstReference(type, {61, 2048, 1}, BestKernelIsa(), pool, true);
    CheckAgainstReference(type, {3, 2048, 2}, BestKernelIsa(), pool, true);
  }
}

TEST(MatMulTest, PreparedInterleavedEveryBatch) {
  // Q4_0 / Q8_0 take the interleaved layout on AVX-512: every batch size, token
  // chunks of 8 with a ragged rest, one and several groups per thread.
  ThreadPool pool(2);
  for (GgmlType type : {GgmlType::kQ4_0, GgmlType::kQ8_0}) {
    for (int64_t n_batch : {1, 2, 3, 7, 8, 9, 20}) {
      CheckAgainstReference(type, {48, 512, n_batch}, BestKernelIsa(), pool, true);
    }
    CheckAgainstReference(type, {16, 2048, 1}, BestKernelIsa(), pool, true);
    CheckAgainstReference(type, {256, 96, 5}, BestKernelIsa(), pool, true);
    for (int64_t rows : {1, 7, 17, 45}) {  // a zero-padded last group
      for (int64_t n_batch : {1, 4, 11}) {
        CheckAgainstReference(type, {rows, 256, n_batch}, BestKernelIsa(), pool, true);
      }
    }
  }
}

TEST(MatMulTest, PreparedInterleavedKQuantsRaggedShapes) {
  // Q4_K / Q5_K / Q6_K take the interleaved layout on AVX-512 (the GGUF-layout kernels elsewhere):
  // rows not a multiple of 16 (zero-padded last group), every batch 1..13 (a full chunk of
  // 8 tokens plus a ragged rest), one and several super-blocks per row.
  ThreadPool pool(2);
  for (GgmlType type : {GgmlType::kQ4_K, GgmlType::kQ5_K, GgmlType::kQ6_K}) {
    for (int64_t n_batch = 1; n_batch <= 13; ++n_batch) {
      CheckAgainstReference(type, {37, 512, n_batch}, BestKernelIsa(), pool, true);
    }
    for (int64_t rows : {1, 7, 16, 17, 45, 130}) {
      for (int64_t n_batch : {1, 5, 8, 9}) {
        CheckAgainstReference(type, {rows, 256, n_batch}, BestKernelIsa(), pool, true);
      }
    }
    CheckAgainstReference(type, {51, 1536, 3}, BestKernelIsa(), pool, true);
  }
}

TEST(MatMulTest, PreparedInterleavedKQuantsMatchScalar) {
  // Same quantized activations and integer sums as the scalar GGUF kernel: only float
  // summation order differs.
  ThreadPool pool(1);
  for (GgmlType type : {GgmlType::kQ4_K, GgmlType::kQ5_K, GgmlType::kQ6_K}) {
    const int64_t rows = 45, cols = 1024;
    const std::vector<float> w_f32 = RandomNormal(rows * cols, 5);
    const std::vector<uint8_t> w_bytes = QuantizeMatrix(type, w_f32.data(), rows, cols);
    const WeightMatrix w{type, rows, cols, w_bytes.data()};
    auto p = Prepare(w);
    ASSERT_TRUE(p.ok()) << p.status();
    EXPECT_EQ(p->repacked_layout(), BestKernelIsa() == KernelIsa::kAvx512);
    for (int64_t n_batch : {1, 6, 11}) {
      const std::vector<float> x = RandomNormal(n_batch * cols, 6);
      std::vector<float> y_ref(n_batch * rows), y(n_batch * rows);
      for (int64_t b = 0; b < n_batch; ++b) {
        MatMul(w, x.data() + b * cols, 1, y_ref.data() + b * rows, pool, KernelIsa::kScalar);
      }
      MatMul(*p, x.data(), n_batch, y.data(), pool);
      for (int64_t i = 0; i < n_batch * rows; ++i) {
        EXPECT_NEAR(y[i], y_ref[i], 1e-3 + 1e-5 * std::fabs(y_ref[i]))
            << GgmlTypeName(type) << " batch " << n_batch << " i " << i;
      }
    }
  }
}

TEST(MatMulTest, LlamaCppOrderIsBitExactAcrossKernels) {
  // Q4_0, Q5_0, Q8_0 and f16 follow llama.cpp's order of float sums in every kernel (scalar,
  // AVX2, AVX-512, the interleaved layout at any batch): the results are equal, not close.
  // cols 172 and 1000: f16 with a leftover past its steps of 64.
  ThreadPool pool(2);
  for (GgmlType type : {GgmlType::kQ4_0, GgmlType::kQ5_0, GgmlType::kQ8_0, GgmlType::kF16}) {
    for (int64_t cols : {int64_t{64}, int64_t{172}, int64_t{1024}}) {
      if (type != GgmlType::kF16 && cols % 32 != 0) continue;
      const int64_t rows = 37;
      const std::vector<float> w_f32 = RandomNormal(rows * cols, 7);
      const std::vector<uint8_t> w_bytes = QuantizeMatrix(type, w_f32.data(), rows, cols);
      const WeightMatrix w{type, rows, cols, w_bytes.data()};
      auto p = Prepare(w);
      ASSERT_TRUE(p.ok()) << p.status();
      for (int64_t n_batch : {1, 3, 9}) {
        SCOPED_TRACE(std::string(GgmlTypeName(type)) + " cols " + std::to_string(cols) + " batch " +
                     std::to_string(n_batch));
        const std::vector<float> x = RandomNormal(n_batch * cols, 8);
        std::vector<float> y_ref(n_batch * rows);
        for (int64_t b = 0; b < n_batch; ++b) {
          MatMul(w, x.data() + b * cols, 1, y_ref.data() + b * rows, pool, KernelIsa::kScalar);
        }
        for (KernelIsa isa : AvailableIsas()) {
          std::vector<float> y(n_batch * rows);
          MatMul(w, x.data(), n_batch, y.data(), pool, isa);
          EXPECT_EQ(y, y_ref) << KernelIsaName(isa);
        }
        std::vector<float> y(n_batch * rows);
        MatMul(*p, x.data(), n_batch, y.data(), pool);
        EXPECT_EQ(y, y_ref) << "prepared";
      }
    }
  }
}

TEST(RepackTest, Interleaved16RoundTripAndDequantize) {
  ThreadPool pool(1);
  for (GgmlType type :
       {GgmlType::kQ4_0, GgmlType::kQ8_0, GgmlType::kQ4_K, GgmlType::kQ5_K, GgmlType::kQ6_K}) {
    const bool k_quant =
        type == GgmlType::kQ4_K || type == GgmlType::kQ5_K || type == GgmlType::kQ6_K;
    const int64_t rows = 32, cols = k_quant ? 512 : 160;  // whole blocks
    const std::vector<float> w_f32 = RandomNormal(rows * cols, 11);
    const std::vector<uint8_t> gguf = QuantizeMatrix(type, w_f32.data(), rows, cols);
    const int64_t row_bytes = RowBytes(type, cols);
    std::vector<uint8_t> group(kernels::Interleaved16GroupBytes(type, cols)), back(row_bytes);
    kernels::InterleaveRows16(type, gguf.data() + 16 * row_bytes, cols, group.data());
    for (int r = 0; r < 16; ++r) {
      kernels::DeinterleaveRow16(type, group.data(), cols, r, back.data());
      EXPECT_TRUE(std::equal(back.begin(), back.end(), gguf.begin() + (16 + r) * row_bytes))
          << GgmlTypeName(type) << " row " << r;
    }
    auto p = Prepare({type, rows, cols, gguf.data()});
    ASSERT_TRUE(p.ok());
    std::vector<float> want(cols), got(cols);
    for (int64_t r = 0; r < rows; ++r) {
      DequantizeRow(WeightMatrix{type, rows, cols, gguf.data()}, r, want.data());
      DequantizeRow(*p, r, got.data());
      EXPECT_EQ(got, want) << GgmlTypeName(type) << " row " << r;
    }
  }
}

TEST(PrepareTest, RejectsBadMatrices) {
  std::vector<uint8_t> data(1024);
  EXPECT_FALSE(Prepare({GgmlType::kQ4_0, 4, 33, data.data()}).ok());   // not whole blocks
  EXPECT_FALSE(Prepare({GgmlType::kQ2_K, 1, 256, data.data()}).ok());  // unsupported type
  EXPECT_FALSE(Prepare({GgmlType::kF32, 0, 32, data.data()}).ok());
  EXPECT_FALSE(Prepare({GgmlType::kF32, 1, 32, nullptr}).ok());
  auto view = Prepare({GgmlType::kF32, 2, 32, data.data()}, {.repack = false});
  ASSERT_TRUE(view.ok());
  EXPECT_FALSE(view->owned());
  EXPECT_EQ(view->view().data, data.data());
  auto owned = Prepare({GgmlType::kF32, 2, 32, data.data()});
  ASSERT_TRUE(owned.ok());
  EXPECT_TRUE(owned->owned());
  EXPECT_EQ(reinterpret_cast<uintptr_t>(owned->view().data) % (2 << 20), 0u);
  PreparedMatrix moved = std::move(*owned);
  EXPECT_TRUE(moved.owned());
}

}  // namespace
}  // namespace tandem
