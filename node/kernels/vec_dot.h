// Internal to node/kernels: the activation formats the weight kernels consume and the
// per-instruction-set kernel tables. Not part of the public interface.
#pragma once

#include <cstdint>
#include <memory>

#include "model/ggml_type.h"
#include "node/kernels/matmul.h"

namespace tandem::kernels {

// One activation vector of n elements prepared for a weight type:
//  * 32-element block types: qs int8 with one scale d per 32 (rounded to f16 as ggml's
//    Q8_0 / Q8_1 are), isum = sum(qs) per block, s = d * isum rounded to f16 (ggml's Q8_1
//    s), lane_sums = sum(qs) per 4 elements (8 per block: the lanes of llama.cpp's integer
//    dot products, so an unsigned-weight kernel can take its offset out lane by lane);
//  * K types: qs int8 with a float scale d per 256, bsums = sum(qs) per 16 (ggml's Q8_K)
//    and bsums32 = sum(qs) per 32 (the Q4_K / Q5_K mins);
//  * F32 / F16 / BF16: f, the activation rounded to the weight's precision (llama.cpp
//    rounds activations to f16 before f16 products).
struct Activation {
  int64_t n = 0;
  const float* f = nullptr;
  const int8_t* qs = nullptr;
  const float* d = nullptr;
  const float* s = nullptr;
  const int32_t* isum = nullptr;
  const int32_t* lane_sums = nullptr;
  const int16_t* bsums = nullptr;
  const int16_t* bsums32 = nullptr;
};

// Owns the storage of n_batch activations, reused across calls.
class ActivationBatch {
 public:
  // Prepares x (n_batch, n) for weights of `type`.
  void Prepare(GgmlType type, const float* x, int64_t n_batch, int64_t n, ThreadPool& pool);
  const Activation& operator[](int64_t b) const { return rows_[b]; }
  const Activation* data() const { return rows_.get(); }

 private:
  struct Free {
    void operator()(void* p) const;
  };
  std::unique_ptr<uint8_t[], Free> storage_;
  size_t capacity_ = 0;
  std::unique_ptr<Activation[]> rows_;
  int64_t rows_capacity_ = 0;
};

// Whether the products add their float terms in llama.cpp's order (ggml's x86 kernels: see
// vec_dot_scalar.cc), so that greedy runs stay token for token with it: the default. With
// TANDEM_FAST_SUMS=1 in the environment, the Q4_0 / Q8_0 interleaved kernels sum each block
// before any float work, and batches of kSgemmMinBatch or more of the types not interleaved
// go to sgemm on f32 activations (faster prompts; results a few ulp, or for sgemm up to
// the activation rounding, away). Read once.
bool ExactSums();

// sum plus the products w[i] * x[i] for begin <= i < end, in the order llama.cpp's GCC build
// adds ggml_vec_dot_f32's leftovers (the n % 64 past its vector steps): GCC vectorizes that
// loop 8 wide as an in-order reduction (each product rounded, then added, one at a time) for
// the whole groups of 8, and contracts the last (end - begin) % 8, its scalar epilogue, into
// fused multiply-adds. (stories260K-f32's ffn_down, 44 leftovers: 40 + 4.)
float F32Leftovers(const float* w, const float* x, int64_t begin, int64_t end, float sum);

// y[r] = dot(row r of the weights, x) for r < n_rows; rows start at w, row_bytes apart.
using RowsDotFn = void (*)(const uint8_t* w, int64_t row_bytes, int64_t n_rows, const Activation& x,
                           float* y);

struct KernelTable {
  RowsDotFn f32, f16, bf16, q4_0, q4_1, q5_0, q5_1, q8_0, q4_k, q5_k, q6_k;
  // Q4_0 with rows a multiple of 8, in llama.cpp's repacked order (see vec_dot_scalar.cc).
  RowsDotFn q4_0_repacked;
};

const KernelTable& ScalarKernels();
const KernelTable& Avx2Kernels();    // only call when KernelIsaAvailable(kAvx2)
const KernelTable& Avx512Kernels();  // only call when KernelIsaAvailable(kAvx512)

RowsDotFn LookupKernel(const KernelTable& table, GgmlType type);

// Row layouts of a PreparedMatrix.
enum class RowLayout {
  kGguf,           // as in the file
  kInterleaved16,  // Q4_0 / Q8_0 / Q4_K / Q5_K / Q6_K, AVX-512 only (see below)
};

// kInterleaved16: rows in groups of 16, each group Interleaved16GroupBytes bytes (the last
// one padded with zero rows). Quants are stored as 64-byte chunks holding 4 consecutive
// GGUF bytes of each of the 16 rows (row r at bytes 4r..4r+3), so one VNNI dot product
// advances 16 rows by 4 elements. Per 32-element block of a Q4_0 / Q8_0 group: the 16
// rows' f16 scales (32 bytes), then
//  * Q4_0: 4 chunks; byte 4r + i of chunk m is the GGUF byte qs[4m + i] of row r (low
//    nibble: element 4m + i, high nibble: element 16 + 4m + i);
//  * Q8_0: 8 chunks; byte 4r + i of chunk s is qs[4s + i] + 128 (unsigned).
// Per 256-element super-block of a K group (scales unpacked to bytes, so a K group is a
// few % larger than 16 GGUF rows):
//  * Q4_K (2368 bytes): f16 d[16], f16 dmin[16], scale bytes sc[j][r] (8 x 16), min bytes
//    m[j / 2][r][j % 2] (so a 32-bit lane holds row r's pair), then 32 chunks: chunk
//    8c + k holds qs[32c + 4k .. +3] (low nibbles: sub-block 2c, high: 2c + 1);
//  * Q5_K (2880 bytes): as Q4_K, then 8 chunks: chunk k holds qh[4k .. +3];
//  * Q6_K (3392 bytes): f16 d[16] and 32 zero bytes, int8 scales s[i / 2][r][i % 2]
//    (16 x 16), then per half h (1536 bytes): 8 chunks of ql[64h + 4k ..], 8 of
//    ql[64h + 32 + 4k ..], 8 of qh[32h + 4k ..].
// A block of weights is decoded once for up to 8 tokens (prompt processing) and the
// layout streams linearly for one token.
inline constexpr int64_t kQ4KInterleavedBlockBytes = 2368, kQ5KInterleavedBlockBytes = 2880,
                         kQ6KInterleavedBlockBytes = 3392;
bool Interleaved16Supports(GgmlType type);
int64_t Interleaved16GroupBytes(GgmlType type, int64_t cols);
void InterleaveRows16(GgmlType type, const uint8_t* gguf_rows, int64_t cols, uint8_t* group);
void DeinterleaveRow16(GgmlType type, const uint8_t* group, int64_t cols, int row,
                       uint8_t* gguf_row);
// y[t * y_stride + 16 * g + r] = dot(row r of group g, x[t]) for t < n_tokens <= 8.
using GroupsDotFn = void (*)(const uint8_t* groups, int64_t group_bytes, int64_t n_groups,
                             const Activation* x, int n_tokens, float* y, int64_t y_stride);
// `rows` of the whole matrix: llama.cpp sums a Q4_0 matrix of 8k rows in another order.
GroupsDotFn Avx512Interleaved16Kernel(GgmlType type, int64_t rows);  // only with kAvx512
inline constexpr int kInterleavedMaxTokens = 8;

// A weight matrix in some row layout with the kernels for it.
struct KernelMatrix {
  WeightMatrix w;  // w.data rows are in `layout`
  RowLayout layout = RowLayout::kGguf;
};
void MatMulLayout(const KernelMatrix& m, const float* x, int64_t n_batch, float* y,
                  ThreadPool& pool, KernelIsa isa);
void DequantizeRowLayout(const KernelMatrix& m, int64_t row, float* out);

// The two product strategies MatMul chooses between (exposed for the benchmarks):
// activations quantized once per token + integer row kernels, or f32 tiles + sgemm.
void MatVecPath(const KernelMatrix& m, const float* x, int64_t n_batch, float* y, ThreadPool& pool,
                KernelIsa isa);
void SgemmPath(const KernelMatrix& m, const float* x, int64_t n_batch, float* y, ThreadPool& pool);

}  // namespace tandem::kernels
