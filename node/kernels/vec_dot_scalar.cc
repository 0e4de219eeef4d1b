// Portable reference kernels: the integer arithmetic every SIMD kernel must reproduce
// (they differ only in the order of float additions).
#include <cmath>
#include <cstring>

#include "base/fp16.h"
#include "node/kernels/quants.h"
#include "node/kernels/vec_dot.h"

namespace tandem::kernels {
namespace {

template <typename Load>
void FloatRows(const uint8_t* w, int64_t row_bytes, int64_t n_rows, const Activation& x, float* y,
               Load load) {
  for (int64_t r = 0; r < n_rows; ++r) {
    const uint8_t* row = w + r * row_bytes;
    float sum = 0;
    for (int64_t i = 0; i < x.n; ++i) sum += load(row, i) * x.f[i];
    y[r] = sum;
  }
}

float F32At(const uint8_t* row, int64_t i) {
  float v;
  std::memcpy(&v, row + 4 * i, 4);
  return v;
}
float F16At(const uint8_t* row, int64_t i) {
  uint16_t h;
  std::memcpy(&h, row + 2 * i, 2);
  return Fp16ToFp32(h);
}

// The 64 lanes of ggml_vec_dot_f32 / _f16 over whole steps of 64, reduced (see F16Rows).
template <typename At>
float VecDotLanes(const uint8_t* row, const Activation& x, int64_t n_steps, At at) {
  float lanes[64] = {};
  for (int64_t i = 0; i < n_steps; i += 64) {
    for (int l = 0; l < 64; ++l) lanes[l] = std::fma(at(row, i + l), x.f[i + l], lanes[l]);
  }
  for (int l = 0; l < 32; ++l) lanes[l] += lanes[l + 32];
  for (int l = 0; l < 16; ++l) lanes[l] += lanes[l + 16];
  for (int half = 8; half >= 1; half /= 2) {
    for (int l = 0; l < half; ++l) lanes[l] += lanes[l + half];
  }
  return lanes[0];
}

// llama.cpp's order for f32 weights (ggml_vec_dot_f32, AVX-512 build): as F16Rows, but the
// n % 64 leftovers join in float (F32Leftovers).
void F32Rows(const uint8_t* w, int64_t rb, int64_t nr, const Activation& x, float* y) {
  const int64_t n_steps = x.n / 64 * 64;
  for (int64_t r = 0; r < nr; ++r) {
    const uint8_t* row = w + r * rb;
    const float sum = VecDotLanes(row, x, n_steps, F32At);
    y[r] = F32Leftovers(reinterpret_cast<const float*>(row), x.f, n_steps, x.n, sum);
  }
}

// llama.cpp's order for an f16 row times f16-rounded activations (ggml_vec_dot_f16, AVX-512
// build): 64 f32 lanes (4 vectors of 16) take fused multiply-adds over whole steps of 64
// elements; the vectors are added (0 += 2, 1 += 3, 0 += 1), the 16 lanes as a halving tree
// (l += l + 8, then + 4, + 2, + 1); the n % 64 leftover products join in double.
void F16Rows(const uint8_t* w, int64_t rb, int64_t nr, const Activation& x, float* y) {
  const int64_t n_steps = x.n / 64 * 64;
  for (int64_t r = 0; r < nr; ++r) {
    const uint8_t* row = w + r * rb;
    double sum = VecDotLanes(row, x, n_steps, F16At);
    for (int64_t i = n_steps; i < x.n; ++i) sum += static_cast<double>(F16At(row, i) * x.f[i]);
    y[r] = static_cast<float>(sum);
  }
}

void Bf16Rows(const uint8_t* w, int64_t rb, int64_t nr, const Activation& x, float* y) {
  FloatRows(w, rb, nr, x, y, [](const uint8_t* row, int64_t i) {
    uint16_t h;
    std::memcpy(&h, row + 2 * i, 2);
    return Bf16ToFp32(h);
  });
}

// Unsigned quants of one 32-element block (0..15 or 0..31) in element order.
void Nibbles(const uint8_t* qs, int* q) {
  for (int j = 0; j < 16; ++j) {
    q[j] = qs[j] & 15;
    q[j + 16] = qs[j] >> 4;
  }
}
void AddHighBits(const uint8_t* qh_bytes, int* q) {
  uint32_t qh;
  std::memcpy(&qh, qh_bytes, 4);
  for (int j = 0; j < 32; ++j) q[j] |= ((qh >> j) & 1) << 4;
}
// llama.cpp's order for the 32-element block types (ggml_vec_dot_q8_0_q8_0, _q4_0_q8_0, ...
// on x86, and its tinyBLAS for batches): 8 f32 lanes; per block, lane l takes the exact
// integer sum over elements 4l..4l+3 times the block's scale product (w.d * x.d) in one
// fused multiply-add; at the end the lanes are added as a tree (l += l + 4, then + 2, + 1).
float LaneTreeSum(float* lanes) {
  for (int l = 0; l < 4; ++l) lanes[l] += lanes[l + 4];
  for (int l = 0; l < 2; ++l) lanes[l] += lanes[l + 2];
  return lanes[0] + lanes[1];
}

// Lane l of one block: sum over 4 elements of (q - offset) * xq, in int32.
int32_t LaneDot(const int* q, const int8_t* xq, int l, int offset, const int32_t* lane_sums) {
  int32_t sum = 0;
  for (int e = 4 * l; e < 4 * l + 4; ++e) sum += q[e] * xq[e];
  return sum - offset * lane_sums[l];
}

template <typename Block, int kOffset, bool kHasMin, bool kHasHigh>
void Q32Rows(const uint8_t* w, int64_t row_bytes, int64_t n_rows, const Activation& x, float* y) {
  const int64_t nb = x.n / 32;
  for (int64_t r = 0; r < n_rows; ++r) {
    const Block* blocks = reinterpret_cast<const Block*>(w + r * row_bytes);
    float lanes[8] = {};
    float min_sum = 0;
    for (int64_t b = 0; b < nb; ++b) {
      const Block& blk = blocks[b];
      int q[32];
      Nibbles(blk.qs, q);
      if constexpr (kHasHigh) AddHighBits(blk.qh, q);
      const float scale = Fp16ToFp32(blk.d) * x.d[b];
      for (int l = 0; l < 8; ++l) {
        const int32_t dot = LaneDot(q, x.qs + 32 * b, l, kOffset, x.lane_sums + 8 * b);
        lanes[l] = std::fma(static_cast<float>(dot), scale, lanes[l]);
      }
      if constexpr (kHasMin) min_sum += Fp16ToFp32(blk.m) * x.s[b];
    }
    y[r] = LaneTreeSum(lanes) + min_sum;
  }
}

// llama.cpp's order for a Q4_0 matrix whose rows are a multiple of 8: its CPU backend
// repacks those (q4_0_8x8, on AVX2 and AVX-512 builds) and sums each whole block in
// integers before one fused multiply-add by the block's scale product (w.d * x.d).
void Q4_0RepackedRows(const uint8_t* w, int64_t row_bytes, int64_t n_rows, const Activation& x,
                      float* y) {
  const int64_t nb = x.n / 32;
  for (int64_t r = 0; r < n_rows; ++r) {
    const BlockQ4_0* blocks = reinterpret_cast<const BlockQ4_0*>(w + r * row_bytes);
    float acc = 0;
    for (int64_t b = 0; b < nb; ++b) {
      int q[32];
      Nibbles(blocks[b].qs, q);
      int32_t dot = 0;
      for (int l = 0; l < 8; ++l) dot += LaneDot(q, x.qs + 32 * b, l, 8, x.lane_sums + 8 * b);
      acc = std::fma(static_cast<float>(dot), Fp16ToFp32(blocks[b].d) * x.d[b], acc);
    }
    y[r] = acc;
  }
}

void Q8_0Rows(const uint8_t* w, int64_t row_bytes, int64_t n_rows, const Activation& x, float* y) {
  const int64_t nb = x.n / 32;
  for (int64_t r = 0; r < n_rows; ++r) {
    const BlockQ8_0* blocks = reinterpret_cast<const BlockQ8_0*>(w + r * row_bytes);
    float lanes[8] = {};
    for (int64_t b = 0; b < nb; ++b) {
      int q[32];
      for (int j = 0; j < 32; ++j) q[j] = blocks[b].qs[j];
      const float scale = Fp16ToFp32(blocks[b].d) * x.d[b];
      for (int l = 0; l < 8; ++l) {
        const int32_t dot = LaneDot(q, x.qs + 32 * b, l, 0, x.lane_sums + 8 * b);
        lanes[l] = std::fma(static_cast<float>(dot), scale, lanes[l]);
      }
    }
    y[r] = LaneTreeSum(lanes);
  }
}

template <typename Block, bool kHasHigh>
void Q45KRows(const uint8_t* w, int64_t row_bytes, int64_t n_rows, const Activation& x, float* y) {
  const int64_t nb = x.n / 256;
  for (int64_t r = 0; r < n_rows; ++r) {
    const Block* blocks = reinterpret_cast<const Block*>(w + r * row_bytes);
    float sum = 0;
    for (int64_t b = 0; b < nb; ++b) {
      const Block& blk = blocks[b];
      const int8_t* xq = x.qs + 256 * b;
      const int16_t* bsums = x.bsums + 16 * b;
      int32_t scaled = 0, mins = 0;
      for (int c = 0; c < 4; ++c) {
        uint8_t sc0, m0, sc1, m1;
        UnpackScaleMinK4(blk.scales, 2 * c, &sc0, &m0);
        UnpackScaleMinK4(blk.scales, 2 * c + 1, &sc1, &m1);
        int32_t dot0 = 0, dot1 = 0;
        for (int l = 0; l < 32; ++l) {
          int lo = blk.qs[32 * c + l] & 15, hi = blk.qs[32 * c + l] >> 4;
          if constexpr (kHasHigh) {
            lo |= ((blk.qh[l] >> (2 * c)) & 1) << 4;
            hi |= ((blk.qh[l] >> (2 * c + 1)) & 1) << 4;
          }
          dot0 += lo * xq[64 * c + l];
          dot1 += hi * xq[64 * c + 32 + l];
        }
        scaled += sc0 * dot0 + sc1 * dot1;
        mins += m0 * (bsums[4 * c] + bsums[4 * c + 1]) + m1 * (bsums[4 * c + 2] + bsums[4 * c + 3]);
      }
      sum += x.d[b] * (Fp16ToFp32(blk.d) * static_cast<float>(scaled) -
                       Fp16ToFp32(blk.dmin) * static_cast<float>(mins));
    }
    y[r] = sum;
  }
}

void Q6KRows(const uint8_t* w, int64_t row_bytes, int64_t n_rows, const Activation& x, float* y) {
  const int64_t nb = x.n / 256;
  for (int64_t r = 0; r < n_rows; ++r) {
    const BlockQ6_K* blocks = reinterpret_cast<const BlockQ6_K*>(w + r * row_bytes);
    float sum = 0;
    for (int64_t b = 0; b < nb; ++b) {
      const BlockQ6_K& blk = blocks[b];
      const int8_t* xq = x.qs + 256 * b;
      int q[256];
      for (int h = 0; h < 2; ++h) {
        const uint8_t* ql = blk.ql + 64 * h;
        const uint8_t* qh = blk.qh + 32 * h;
        for (int l = 0; l < 32; ++l) {
          q[128 * h + l] = (ql[l] & 15) | (qh[l] & 3) << 4;
          q[128 * h + l + 32] = (ql[l + 32] & 15) | ((qh[l] >> 2) & 3) << 4;
          q[128 * h + l + 64] = (ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4;
          q[128 * h + l + 96] = (ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4;
        }
      }
      int32_t scaled = 0;
      for (int i = 0; i < 16; ++i) {
        int32_t dot = 0;
        for (int l = 0; l < 16; ++l) dot += q[16 * i + l] * xq[16 * i + l];
        scaled += blk.scales[i] * (dot - 32 * x.bsums[16 * b + i]);
      }
      sum += x.d[b] * Fp16ToFp32(blk.d) * static_cast<float>(scaled);
    }
    y[r] = sum;
  }
}

}  // namespace

__attribute__((optimize("fp-contract=off"))) float F32Leftovers(const float* w, const float* x,
                                                                int64_t begin, int64_t end,
                                                                float sum) {
  const int64_t groups_end = begin + (end - begin) / 8 * 8;
  for (int64_t i = begin; i < groups_end; ++i) {
    const float product = w[i] * x[i];
    sum += product;
  }
  for (int64_t i = groups_end; i < end; ++i) sum = std::fma(w[i], x[i], sum);
  return sum;
}

const KernelTable& ScalarKernels() {
  static const KernelTable table = {
      .f32 = F32Rows,
      .f16 = F16Rows,
      .bf16 = Bf16Rows,
      .q4_0 = Q32Rows<BlockQ4_0, 8, false, false>,
      .q4_1 = Q32Rows<BlockQ4_1, 0, true, false>,
      .q5_0 = Q32Rows<BlockQ5_0, 16, false, true>,
      .q5_1 = Q32Rows<BlockQ5_1, 0, true, true>,
      .q8_0 = Q8_0Rows,
      .q4_k = Q45KRows<BlockQ4_K, false>,
      .q5_k = Q45KRows<BlockQ5_K, true>,
      .q6_k = Q6KRows,
      .q4_0_repacked = Q4_0RepackedRows,
  };
  return table;
}

RowsDotFn LookupKernel(const KernelTable& t, GgmlType type) {
  switch (type) {
    case GgmlType::kF32:
      return t.f32;
    case GgmlType::kF16:
      return t.f16;
    case GgmlType::kBF16:
      return t.bf16;
    case GgmlType::kQ4_0:
      return t.q4_0;
    case GgmlType::kQ4_1:
      return t.q4_1;
    case GgmlType::kQ5_0:
      return t.q5_0;
    case GgmlType::kQ5_1:
      return t.q5_1;
    case GgmlType::kQ8_0:
      return t.q8_0;
    case GgmlType::kQ4_K:
      return t.q4_k;
    case GgmlType::kQ5_K:
      return t.q5_k;
    case GgmlType::kQ6_K:
      return t.q6_k;
    default:
      return nullptr;
  }
}

}  // namespace tandem::kernels
