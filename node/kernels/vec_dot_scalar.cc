// Portable reference kernels: the integer arithmetic every SIMD kernel must reproduce
// (they differ only in the order of float additions).
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

void F32Rows(const uint8_t* w, int64_t rb, int64_t nr, const Activation& x, float* y) {
  FloatRows(w, rb, nr, x, y, [](const uint8_t* row, int64_t i) {
    float v;
    std::memcpy(&v, row + 4 * i, 4);
    return v;
  });
}
void F16Rows(const uint8_t* w, int64_t rb, int64_t nr, const Activation& x, float* y) {
  FloatRows(w, rb, nr, x, y, [](const uint8_t* row, int64_t i) {
    uint16_t h;
    std::memcpy(&h, row + 2 * i, 2);
    return Fp16ToFp32(h);
  });
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
int32_t DotBlock(const int* q, const int8_t* xq) {
  int32_t sum = 0;
  for (int j = 0; j < 32; ++j) sum += q[j] * xq[j];
  return sum;
}

template <typename Block, int kOffset, bool kHasMin, bool kHasHigh>
void Q32Rows(const uint8_t* w, int64_t row_bytes, int64_t n_rows, const Activation& x, float* y) {
  const int64_t nb = x.n / 32;
  for (int64_t r = 0; r < n_rows; ++r) {
    const Block* blocks = reinterpret_cast<const Block*>(w + r * row_bytes);
    float sum = 0;
    for (int64_t b = 0; b < nb; ++b) {
      const Block& blk = blocks[b];
      int q[32];
      Nibbles(blk.qs, q);
      if constexpr (kHasHigh) AddHighBits(blk.qh, q);
      const int32_t dot = DotBlock(q, x.qs + 32 * b) - kOffset * x.isum[b];
      sum += Fp16ToFp32(blk.d) * x.d[b] * static_cast<float>(dot);
      if constexpr (kHasMin) sum += Fp16ToFp32(blk.m) * x.s[b];
    }
    y[r] = sum;
  }
}

void Q8_0Rows(const uint8_t* w, int64_t row_bytes, int64_t n_rows, const Activation& x, float* y) {
  const int64_t nb = x.n / 32;
  for (int64_t r = 0; r < n_rows; ++r) {
    const BlockQ8_0* blocks = reinterpret_cast<const BlockQ8_0*>(w + r * row_bytes);
    float sum = 0;
    for (int64_t b = 0; b < nb; ++b) {
      int32_t dot = 0;
      for (int j = 0; j < 32; ++j) dot += blocks[b].qs[j] * x.qs[32 * b + j];
      sum += Fp16ToFp32(blocks[b].d) * x.d[b] * static_cast<float>(dot);
    }
    y[r] = sum;
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
