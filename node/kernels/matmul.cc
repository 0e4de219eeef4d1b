#include "node/kernels/matmul.h"

#include <cblas.h>
#include <cpuid.h>

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string_view>
#include <type_traits>
#include <vector>

#include "node/kernels/quants.h"
#include "node/kernels/vec_dot.h"

namespace tandem {
namespace {

const kernels::KernelTable& TableFor(KernelIsa isa) {
  switch (isa) {
    case KernelIsa::kAvx512:
      return kernels::Avx512Kernels();
    case KernelIsa::kAvx2:
      return kernels::Avx2Kernels();
    case KernelIsa::kScalar:
      break;
  }
  return kernels::ScalarKernels();
}

// Rows per tile in the one-token path: the tile's weights are read once for all tokens of
// a small batch.
constexpr int64_t kRowTile = 16;

}  // namespace

namespace kernels {

void MatVecPath(const KernelMatrix& m, const float* x, int64_t n_batch, float* y, ThreadPool& pool,
                KernelIsa isa) {
  const WeightMatrix& w = m.w;
  static thread_local kernels::ActivationBatch activations;
  activations.Prepare(w.type, x, n_batch, w.cols, pool);
  const kernels::KernelTable& table = TableFor(isa);
  // llama.cpp repacks a Q4_0 matrix of 8k rows and sums each block before its float work.
  const kernels::RowsDotFn fn = w.type == GgmlType::kQ4_0 && w.rows % 8 == 0 && ExactSums()
                                    ? table.q4_0_repacked
                                    : kernels::LookupKernel(table, w.type);
  const int64_t row_bytes = RowBytes(w.type, w.cols);
  const kernels::ActivationBatch& acts = activations;
  pool.ParallelFor(w.rows, kRowTile, [&](int64_t r0, int64_t r1) {
    if (n_batch == 1) {
      fn(w.data + r0 * row_bytes, row_bytes, r1 - r0, acts[0], y + r0);
      return;
    }
    for (int64_t t = r0; t < r1; t += kRowTile) {
      const int64_t t1 = std::min(r1, t + kRowTile);
      for (int64_t b = 0; b < n_batch; ++b) {
        fn(w.data + t * row_bytes, row_bytes, t1 - t, acts[b], y + b * w.rows + t);
      }
    }
  });
}

// Many tokens: OpenBLAS sgemm on f32 tiles of the weights, one OpenBLAS thread inside each
// of our pool threads (no oversubscription). Chosen by measurement (bench BM_Gemm, batch
// 128, 8192x2048, 2 threads): sgemm 54 / 64 / 43 ms vs the integer kernel once per token
// 68 / 72 / 49 ms for Q4_0 / Q8_0 / Q4_K. Q4_0 / Q8_0 / Q4_K / Q5_K / Q6_K on AVX-512 no
// longer come here: the interleaved layout's kernel (8 tokens per pass over a 16-row group)
// is 4-6x faster (BM_Gemm 8192x2048, batch 128, 2 threads: 4.9 / 5.3 ms vs sgemm 19.7 /
// 19.6 ms for Q4_0 / Q8_0; 3.3 / 4.0 / 4.5 ms vs 19.5 / 20.0 / 24.9 ms for Q4_K / Q5_K /
// Q6_K, whose integer sums run a whole 256-element super-block before any float work).
// Debian's OpenBLAS 0.3.21 runs its Haswell (AVX2) kernels on AVX-512 AMD CPUs.
void SgemmPath(const KernelMatrix& m, const float* x, int64_t n_batch, float* y, ThreadPool& pool) {
  const WeightMatrix& w = m.w;
  static std::once_flag once;
  std::call_once(once, [] { openblas_set_num_threads(1); });
  // Tiles of about 1 MiB of f32 weights stay in L2 while sgemm streams the tokens.
  const int64_t tile_rows = std::max<int64_t>(16, (int64_t{1} << 18) / w.cols);
  pool.ParallelFor(w.rows, 16, [&](int64_t r0, int64_t r1) {
    if (w.type == GgmlType::kF32) {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(n_batch),
                  static_cast<int>(r1 - r0), static_cast<int>(w.cols), 1.0f, x,
                  static_cast<int>(w.cols), reinterpret_cast<const float*>(w.data) + r0 * w.cols,
                  static_cast<int>(w.cols), 0.0f, y + r0, static_cast<int>(w.rows));
      return;
    }
    std::vector<float> tile(static_cast<size_t>(tile_rows * w.cols));
    for (int64_t t = r0; t < r1; t += tile_rows) {
      const int64_t t1 = std::min(r1, t + tile_rows);
      for (int64_t r = t; r < t1; ++r) DequantizeRowLayout(m, r, tile.data() + (r - t) * w.cols);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(n_batch),
                  static_cast<int>(t1 - t), static_cast<int>(w.cols), 1.0f, x,
                  static_cast<int>(w.cols), tile.data(), static_cast<int>(w.cols), 0.0f, y + t,
                  static_cast<int>(w.rows));
    }
  });
}

namespace {

// One row times one token in tinyBLAS's order: 16 lanes of fused multiply-adds over the
// length (a multiple of 16), then _mm512_reduce_add_ps's tree (l += l + 8, + 4, + 2, + 1).
__attribute__((target_clones("arch=x86-64-v4", "avx2,fma", "default"))) float TinyBlasDot(
    const float* w, const float* x, int64_t k) {
  float lanes[16] = {};
  for (int64_t l = 0; l < k; l += 16) {
    for (int q = 0; q < 16; ++q) lanes[q] = std::fma(w[l + q], x[l + q], lanes[q]);
  }
  for (int half = 8; half >= 1; half /= 2) {
    for (int q = 0; q < half; ++q) lanes[q] += lanes[q + half];
  }
  return lanes[0];
}

}  // namespace

// F32 / F16 weights, two tokens or more, as llama.cpp's tinyBLAS multiplies them (its sgemm
// takes them when the length is a multiple of 16 and the rows of 4): activations rounded to
// the weights' precision, each row decoded to f32 once per tile of 16 rows.
void TinyBlasFloatPath(const KernelMatrix& m, const float* x, int64_t n_batch, float* y,
                       ThreadPool& pool) {
  const WeightMatrix& w = m.w;
  static thread_local kernels::ActivationBatch activations;
  activations.Prepare(w.type, x, n_batch, w.cols, pool);
  const kernels::ActivationBatch& acts = activations;
  pool.ParallelFor(w.rows, kRowTile, [&](int64_t r0, int64_t r1) {
    std::vector<float> rows(static_cast<size_t>(kRowTile * w.cols));
    for (int64_t t = r0; t < r1; t += kRowTile) {
      const int64_t t1 = std::min(r1, t + kRowTile);
      for (int64_t r = t; r < t1; ++r) DequantizeRowLayout(m, r, rows.data() + (r - t) * w.cols);
      for (int64_t b = 0; b < n_batch; ++b) {
        for (int64_t r = t; r < t1; ++r) {
          y[b * w.rows + r] = TinyBlasDot(rows.data() + (r - t) * w.cols, acts[b].f, w.cols);
        }
      }
    }
  });
}

// Interleaved 16-row groups (vec_dot.h): every product, any batch. Tokens go 8 at a time
// through one group's weights while they sit in L1/L2; one token streams all groups.
void Interleaved16Path(const KernelMatrix& m, const float* x, int64_t n_batch, float* y,
                       ThreadPool& pool) {
  const WeightMatrix& w = m.w;
  static thread_local kernels::ActivationBatch activations;
  activations.Prepare(w.type, x, n_batch, w.cols, pool);
  const Activation* acts = activations.data();
  const GroupsDotFn fn = Avx512Interleaved16Kernel(w.type, w.rows);
  const int64_t group_bytes = Interleaved16GroupBytes(w.type, w.cols);
  const int64_t n_full = w.rows / 16, n_groups = (w.rows + 15) / 16;
  pool.ParallelFor(n_groups, 1, [&](int64_t g0, int64_t g1) {
    const int64_t g1_full = std::min(g1, n_full);
    if (n_batch <= kInterleavedMaxTokens && g0 < g1_full) {
      fn(w.data + g0 * group_bytes, group_bytes, g1_full - g0, acts, static_cast<int>(n_batch),
         y + 16 * g0, w.rows);
    } else {
      for (int64_t g = g0; g < g1_full; ++g) {
        for (int64_t b = 0; b < n_batch; b += kInterleavedMaxTokens) {
          const int n = static_cast<int>(std::min<int64_t>(kInterleavedMaxTokens, n_batch - b));
          fn(w.data + g * group_bytes, group_bytes, 1, acts + b, n, y + b * w.rows + 16 * g,
             w.rows);
        }
      }
    }
    if (g1 > n_full) {  // the zero-padded last group: only its real rows are stored
      const int64_t real_rows = w.rows - 16 * n_full;
      float part[kInterleavedMaxTokens * 16];
      for (int64_t b = 0; b < n_batch; b += kInterleavedMaxTokens) {
        const int n = static_cast<int>(std::min<int64_t>(kInterleavedMaxTokens, n_batch - b));
        fn(w.data + n_full * group_bytes, group_bytes, 1, acts + b, n, part, 16);
        for (int t = 0; t < n; ++t) {
          std::copy_n(part + 16 * t, real_rows, y + (b + t) * w.rows + 16 * n_full);
        }
      }
    }
  });
}

bool ExactSums() {
  static const bool exact = [] {
    const char* fast = std::getenv("TANDEM_FAST_SUMS");
    return fast == nullptr || std::string_view(fast) == "0" || std::string_view(fast).empty();
  }();
  return exact;
}

bool Interleaved16Supports(GgmlType type) {
  return type == GgmlType::kQ4_0 || type == GgmlType::kQ8_0 || type == GgmlType::kQ4_K ||
         type == GgmlType::kQ5_K || type == GgmlType::kQ6_K;
}

namespace {

// K super-block sizes in the interleaved layout (vec_dot.h) and where their parts start.
constexpr int64_t kQ4KScales = 64, kQ4KMins = 192, kKQuants = 320;
constexpr int64_t kQ6KScales = 64;

// Offset in a Q4_K group super-block of row r's qs[j].
int64_t Q4KQuantAt(int r, int64_t j) { return kKQuants + 64 * (j / 4) + 4 * r + j % 4; }
// Offset in a Q5_K group super-block of row r's qh[j].
int64_t Q5KHighAt(int r, int64_t j) { return kKQuants + 2048 + 64 * (j / 4) + 4 * r + j % 4; }
// Offsets in a Q6_K group super-block of row r's ql[j] and qh[j].
int64_t Q6KLowAt(int r, int64_t j) {
  return kKQuants + 1536 * (j / 64) + 64 * ((j % 64) / 4) + 4 * r + j % 4;
}
int64_t Q6KHighAt(int r, int64_t j) {
  return kKQuants + 1536 * (j / 32) + 1024 + 64 * ((j % 32) / 4) + 4 * r + j % 4;
}

// The inverse of UnpackScaleMinK4 (every bit of the 12 bytes is a scale or min bit).
void PackScaleMinK4(const uint8_t* sc, const uint8_t* m, uint8_t* s) {
  for (int j = 0; j < 4; ++j) {
    s[j] = static_cast<uint8_t>((sc[j] & 63) | (sc[j + 4] >> 4) << 6);
    s[j + 4] = static_cast<uint8_t>((m[j] & 63) | (m[j + 4] >> 4) << 6);
    s[j + 8] = static_cast<uint8_t>((sc[j + 4] & 15) | (m[j + 4] & 15) << 4);
  }
}

// Q4_K and Q5_K (the same fields; Q5_K adds qh after the Q4_K part).
template <typename Block>
void InterleaveQ45K(const uint8_t* gguf_rows, int64_t row_bytes, int64_t nb, uint8_t* group) {
  constexpr bool kQ5 = std::is_same_v<Block, BlockQ5_K>;
  for (int64_t b = 0; b < nb; ++b) {
    uint8_t* out = group + (kQ5 ? kQ5KInterleavedBlockBytes : kQ4KInterleavedBlockBytes) * b;
    for (int r = 0; r < 16; ++r) {
      const auto* blk = reinterpret_cast<const Block*>(gguf_rows + r * row_bytes) + b;
      std::memcpy(out + 2 * r, &blk->d, 2);
      std::memcpy(out + 32 + 2 * r, &blk->dmin, 2);
      for (int j = 0; j < 8; ++j) {
        uint8_t sc, m;
        UnpackScaleMinK4(blk->scales, j, &sc, &m);
        out[kQ4KScales + 16 * j + r] = sc;
        out[kQ4KMins + 32 * (j / 2) + 2 * r + j % 2] = m;
      }
      for (int64_t j = 0; j < 128; ++j) out[Q4KQuantAt(r, j)] = blk->qs[j];
      if constexpr (kQ5) {
        for (int64_t j = 0; j < 32; ++j) out[Q5KHighAt(r, j)] = blk->qh[j];
      }
    }
  }
}

template <typename Block>
void DeinterleaveQ45K(const uint8_t* group, int64_t nb, int r, uint8_t* gguf_row) {
  constexpr bool kQ5 = std::is_same_v<Block, BlockQ5_K>;
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* in = group + (kQ5 ? kQ5KInterleavedBlockBytes : kQ4KInterleavedBlockBytes) * b;
    auto* blk = reinterpret_cast<Block*>(gguf_row) + b;
    std::memcpy(&blk->d, in + 2 * r, 2);
    std::memcpy(&blk->dmin, in + 32 + 2 * r, 2);
    uint8_t sc[8], m[8];
    for (int j = 0; j < 8; ++j) {
      sc[j] = in[kQ4KScales + 16 * j + r];
      m[j] = in[kQ4KMins + 32 * (j / 2) + 2 * r + j % 2];
    }
    PackScaleMinK4(sc, m, blk->scales);
    for (int64_t j = 0; j < 128; ++j) blk->qs[j] = in[Q4KQuantAt(r, j)];
    if constexpr (kQ5) {
      for (int64_t j = 0; j < 32; ++j) blk->qh[j] = in[Q5KHighAt(r, j)];
    }
  }
}

void InterleaveQ6K(const uint8_t* gguf_rows, int64_t row_bytes, int64_t nb, uint8_t* group) {
  for (int64_t b = 0; b < nb; ++b) {
    uint8_t* out = group + kQ6KInterleavedBlockBytes * b;
    std::memset(out, 0, kQ6KScales);
    for (int r = 0; r < 16; ++r) {
      const auto* blk = reinterpret_cast<const BlockQ6_K*>(gguf_rows + r * row_bytes) + b;
      std::memcpy(out + 2 * r, &blk->d, 2);
      for (int i = 0; i < 16; ++i) {
        out[kQ6KScales + 32 * (i / 2) + 2 * r + i % 2] = static_cast<uint8_t>(blk->scales[i]);
      }
      for (int64_t j = 0; j < 128; ++j) out[Q6KLowAt(r, j)] = blk->ql[j];
      for (int64_t j = 0; j < 64; ++j) out[Q6KHighAt(r, j)] = blk->qh[j];
    }
  }
}

void DeinterleaveQ6K(const uint8_t* group, int64_t nb, int r, uint8_t* gguf_row) {
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* in = group + kQ6KInterleavedBlockBytes * b;
    auto* blk = reinterpret_cast<BlockQ6_K*>(gguf_row) + b;
    std::memcpy(&blk->d, in + 2 * r, 2);
    for (int i = 0; i < 16; ++i) {
      blk->scales[i] = static_cast<int8_t>(in[kQ6KScales + 32 * (i / 2) + 2 * r + i % 2]);
    }
    for (int64_t j = 0; j < 128; ++j) blk->ql[j] = in[Q6KLowAt(r, j)];
    for (int64_t j = 0; j < 64; ++j) blk->qh[j] = in[Q6KHighAt(r, j)];
  }
}

}  // namespace

int64_t Interleaved16GroupBytes(GgmlType type, int64_t cols) {
  assert(Interleaved16Supports(type));
  switch (type) {
    case GgmlType::kQ4_K:
      return kQ4KInterleavedBlockBytes * (cols / kQkK);
    case GgmlType::kQ5_K:
      return kQ5KInterleavedBlockBytes * (cols / kQkK);
    case GgmlType::kQ6_K:
      return kQ6KInterleavedBlockBytes * (cols / kQkK);
    default:
      return 16 * RowBytes(type, cols);
  }
}

void InterleaveRows16(GgmlType type, const uint8_t* gguf_rows, int64_t cols, uint8_t* group) {
  assert(Interleaved16Supports(type));
  const int64_t row_bytes = RowBytes(type, cols);
  if (type == GgmlType::kQ4_K) {
    return InterleaveQ45K<BlockQ4_K>(gguf_rows, row_bytes, cols / kQkK, group);
  }
  if (type == GgmlType::kQ5_K) {
    return InterleaveQ45K<BlockQ5_K>(gguf_rows, row_bytes, cols / kQkK, group);
  }
  if (type == GgmlType::kQ6_K) return InterleaveQ6K(gguf_rows, row_bytes, cols / kQkK, group);
  const int64_t nb = cols / 32;
  const bool q4 = type == GgmlType::kQ4_0;
  const int64_t block_bytes = q4 ? 18 : 34, quant_bytes = q4 ? 16 : 32;
  for (int64_t b = 0; b < nb; ++b) {
    uint8_t* out = group + 16 * block_bytes * b;
    for (int r = 0; r < 16; ++r) {
      const uint8_t* blk = gguf_rows + r * row_bytes + block_bytes * b;
      std::memcpy(out + 2 * r, blk, 2);  // f16 scale
      for (int64_t j = 0; j < quant_bytes; ++j) {
        const uint8_t byte = blk[2 + j];
        out[32 + 64 * (j / 4) + 4 * r + j % 4] = q4 ? byte : static_cast<uint8_t>(byte ^ 0x80);
      }
    }
  }
}

void DeinterleaveRow16(GgmlType type, const uint8_t* group, int64_t cols, int row,
                       uint8_t* gguf_row) {
  assert(Interleaved16Supports(type) && row >= 0 && row < 16);
  if (type == GgmlType::kQ4_K)
    return DeinterleaveQ45K<BlockQ4_K>(group, cols / kQkK, row, gguf_row);
  if (type == GgmlType::kQ5_K)
    return DeinterleaveQ45K<BlockQ5_K>(group, cols / kQkK, row, gguf_row);
  if (type == GgmlType::kQ6_K) return DeinterleaveQ6K(group, cols / kQkK, row, gguf_row);
  const int64_t nb = cols / 32;
  const bool q4 = type == GgmlType::kQ4_0;
  const int64_t block_bytes = q4 ? 18 : 34, quant_bytes = q4 ? 16 : 32;
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* in = group + 16 * block_bytes * b;
    uint8_t* blk = gguf_row + block_bytes * b;
    std::memcpy(blk, in + 2 * row, 2);
    for (int64_t j = 0; j < quant_bytes; ++j) {
      const uint8_t byte = in[32 + 64 * (j / 4) + 4 * row + j % 4];
      blk[2 + j] = q4 ? byte : static_cast<uint8_t>(byte ^ 0x80);
    }
  }
}

void DequantizeRowLayout(const KernelMatrix& m, int64_t row, float* out) {
  const int64_t row_bytes = RowBytes(m.w.type, m.w.cols);
  const uint8_t* src = m.w.data + row * row_bytes;
  if (m.layout == RowLayout::kInterleaved16) {
    std::vector<uint8_t> gguf(static_cast<size_t>(row_bytes));
    DeinterleaveRow16(m.w.type, m.w.data + (row / 16) * Interleaved16GroupBytes(m.w.type, m.w.cols),
                      m.w.cols, static_cast<int>(row % 16), gguf.data());
    DequantizeRowReference(m.w.type, gguf.data(), m.w.cols, out);
  } else {
    DequantizeRowReference(m.w.type, src, m.w.cols, out);
  }
}

void MatMulLayout(const KernelMatrix& m, const float* x, int64_t n_batch, float* y,
                  ThreadPool& pool, KernelIsa isa) {
  assert(MatMulSupports(m.w.type) && KernelIsaAvailable(isa));
  if (n_batch <= 0 || m.w.rows <= 0) return;
  // llama.cpp multiplies quantized and f16 / bf16 weights with activations rounded to the
  // matching format, whatever the batch; sgemm on f32 activations would not.
  const bool sgemm_allowed = !ExactSums();
  const bool float_weights = m.w.type == GgmlType::kF32 || m.w.type == GgmlType::kF16;
  if (m.layout == RowLayout::kInterleaved16) {
    Interleaved16Path(m, x, n_batch, y, pool);
  } else if (float_weights && ExactSums()) {
    if (n_batch >= 2 && m.w.cols % 16 == 0 && m.w.rows % 4 == 0) {
      TinyBlasFloatPath(m, x, n_batch, y, pool);
    } else {
      MatVecPath(m, x, n_batch, y, pool, isa);  // ggml_vec_dot_f32 / _f16, token by token
    }
  } else if (n_batch >= kSgemmMinBatch && sgemm_allowed) {
    SgemmPath(m, x, n_batch, y, pool);
  } else {
    MatVecPath(m, x, n_batch, y, pool, isa);
  }
}

}  // namespace kernels

bool MatMulSupports(GgmlType type) { return IsSupportedWeightType(type); }

void DequantizeRow(const WeightMatrix& w, int64_t row, float* out) {
  assert(row >= 0 && row < w.rows);
  DequantizeRowReference(w.type, w.data + row * RowBytes(w.type, w.cols), w.cols, out);
}

const char* KernelIsaName(KernelIsa isa) {
  switch (isa) {
    case KernelIsa::kAvx512:
      return "avx512";
    case KernelIsa::kAvx2:
      return "avx2";
    case KernelIsa::kScalar:
      break;
  }
  return "scalar";
}

namespace {
// F16C from CPUID: clang's __builtin_cpu_supports does not know "f16c".
bool CpuHasF16c() {
  unsigned eax, ebx, ecx, edx;
  return __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_F16C) != 0;
}
}  // namespace

bool KernelIsaAvailable(KernelIsa isa) {
  switch (isa) {
    case KernelIsa::kAvx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni") &&
             KernelIsaAvailable(KernelIsa::kAvx2);
    case KernelIsa::kAvx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && CpuHasF16c();
    case KernelIsa::kScalar:
      break;
  }
  return true;
}

KernelIsa BestKernelIsa() {
  static const KernelIsa best = [] {
    if (KernelIsaAvailable(KernelIsa::kAvx512)) return KernelIsa::kAvx512;
    if (KernelIsaAvailable(KernelIsa::kAvx2)) return KernelIsa::kAvx2;
    return KernelIsa::kScalar;
  }();
  return best;
}

void MatMul(const WeightMatrix& w, const float* x, int64_t n_batch, float* y, ThreadPool& pool,
            KernelIsa isa) {
  kernels::MatMulLayout({w, kernels::RowLayout::kGguf}, x, n_batch, y, pool, isa);
}

void MatMul(const WeightMatrix& w, const float* x, int64_t n_batch, float* y, ThreadPool& pool) {
  MatMul(w, x, n_batch, y, pool, BestKernelIsa());
}

}  // namespace tandem
