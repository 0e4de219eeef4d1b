// Products of a GGUF weight matrix with activations. Every weight type plugs in here.
#pragma once

#include <cstdint>

#include "model/ggml_type.h"
#include "node/kernels/thread_pool.h"

namespace tandem {

// A weight matrix as GGUF stores it: `rows` rows of `cols` elements of `type`, each row
// `RowBytes(type, cols)` bytes, rows back to back starting at `data`.
struct WeightMatrix {
  GgmlType type = GgmlType::kF32;
  int64_t rows = 0;
  int64_t cols = 0;
  const uint8_t* data = nullptr;
};

// Whether MatMul supports this weight type.
bool MatMulSupports(GgmlType type);

// y[b * w.rows + r] = sum_c W[r, c] * x[b * w.cols + c]  for b < n_batch, r < w.rows.
// n_batch == 1 is the one-token (matrix-vector) path; larger batches are prompt
// processing or several sessions at once.
void MatMul(const WeightMatrix& w, const float* x, int64_t n_batch, float* y, ThreadPool& pool);

// Row `row` of the matrix converted to f32 (n = w.cols values): embedding lookup.
void DequantizeRow(const WeightMatrix& w, int64_t row, float* out);

// Instruction-set levels of the kernels, chosen at run time (the binary runs on any x86-64).
enum class KernelIsa {
  kScalar,  // portable reference
  kAvx2,    // AVX2 + FMA + F16C
  kAvx512,  // AVX-512 F/BW/VL + VNNI
};
const char* KernelIsaName(KernelIsa isa);
bool KernelIsaAvailable(KernelIsa isa);  // on this CPU
KernelIsa BestKernelIsa();               // the one MatMul uses

// MatMul forced to one instruction-set level (tests and benchmarks); `isa` must be available.
void MatMul(const WeightMatrix& w, const float* x, int64_t n_batch, float* y, ThreadPool& pool,
            KernelIsa isa);

// Products with n_batch at least this use dequantized tiles and OpenBLAS sgemm; smaller
// batches run the integer matrix-vector kernel once per token. (A PreparedMatrix in the
// interleaved layout, Q4_0 / Q8_0 / Q4_K / Q5_K / Q6_K on AVX-512, uses its own kernel for
// every batch.) Only f32 weights take sgemm unless TANDEM_FAST_SUMS=1 (see vec_dot.h): the
// other types keep llama.cpp's activation rounding.
inline constexpr int64_t kSgemmMinBatch = 8;

}  // namespace tandem
