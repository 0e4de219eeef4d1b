#include "node/kernels/quants.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstring>

#include "base/fp16.h"

namespace tandem {
namespace {

int NearestInt(float x) { return static_cast<int>(std::lrintf(x)); }

// The element of largest magnitude, with its sign (type-0 quantizers map it to -2^(b-1)).
float SignedAbsMax(const float* x, int64_t n, float* amax_out) {
  float amax = 0, max = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      max = x[i];
    }
  }
  *amax_out = amax;
  return max;
}

void QuantizeQ4_0(const float* x, BlockQ4_0* b) {
  float amax;
  const float max = SignedAbsMax(x, 32, &amax);
  const float d = max / -8;
  const float id = d != 0 ? 1.0f / d : 0.0f;
  b->d = Fp32ToFp16(d);
  for (int j = 0; j < 16; ++j) {
    const int q0 = std::min(15, static_cast<int>(x[j] * id + 8.5f));
    const int q1 = std::min(15, static_cast<int>(x[j + 16] * id + 8.5f));
    b->qs[j] = static_cast<uint8_t>(q0 | q1 << 4);
  }
}

void QuantizeQ4_1(const float* x, BlockQ4_1* b) {
  const float mn = *std::min_element(x, x + 32), mx = *std::max_element(x, x + 32);
  const float d = (mx - mn) / 15;
  const float id = d != 0 ? 1.0f / d : 0.0f;
  b->d = Fp32ToFp16(d);
  b->m = Fp32ToFp16(mn);
  for (int j = 0; j < 16; ++j) {
    const int q0 = std::min(15, static_cast<int>((x[j] - mn) * id + 0.5f));
    const int q1 = std::min(15, static_cast<int>((x[j + 16] - mn) * id + 0.5f));
    b->qs[j] = static_cast<uint8_t>(q0 | q1 << 4);
  }
}

void QuantizeQ5_0(const float* x, BlockQ5_0* b) {
  float amax;
  const float max = SignedAbsMax(x, 32, &amax);
  const float d = max / -16;
  const float id = d != 0 ? 1.0f / d : 0.0f;
  b->d = Fp32ToFp16(d);
  uint32_t qh = 0;
  for (int j = 0; j < 16; ++j) {
    const int q0 = std::min(31, static_cast<int>(x[j] * id + 16.5f));
    const int q1 = std::min(31, static_cast<int>(x[j + 16] * id + 16.5f));
    b->qs[j] = static_cast<uint8_t>((q0 & 15) | (q1 & 15) << 4);
    qh |= static_cast<uint32_t>(q0 >> 4) << j | static_cast<uint32_t>(q1 >> 4) << (j + 16);
  }
  std::memcpy(b->qh, &qh, 4);
}

void QuantizeQ5_1(const float* x, BlockQ5_1* b) {
  const float mn = *std::min_element(x, x + 32), mx = *std::max_element(x, x + 32);
  const float d = (mx - mn) / 31;
  const float id = d != 0 ? 1.0f / d : 0.0f;
  b->d = Fp32ToFp16(d);
  b->m = Fp32ToFp16(mn);
  uint32_t qh = 0;
  for (int j = 0; j < 16; ++j) {
    const int q0 = std::min(31, static_cast<int>((x[j] - mn) * id + 0.5f));
    const int q1 = std::min(31, static_cast<int>((x[j + 16] - mn) * id + 0.5f));
    b->qs[j] = static_cast<uint8_t>((q0 & 15) | (q1 & 15) << 4);
    qh |= static_cast<uint32_t>(q0 >> 4) << j | static_cast<uint32_t>(q1 >> 4) << (j + 16);
  }
  std::memcpy(b->qh, &qh, 4);
}

void QuantizeQ8_0(const float* x, BlockQ8_0* b) {
  float amax;
  SignedAbsMax(x, 32, &amax);
  const float d = amax / 127;
  const float id = d != 0 ? 1.0f / d : 0.0f;
  b->d = Fp32ToFp16(d);
  for (int j = 0; j < 32; ++j) b->qs[j] = static_cast<int8_t>(NearestInt(x[j] * id));
}

// Q4_K / Q5_K: per sub-block of 32 a scale (max - min) / qmax and a min <= 0, both then
// quantized to 6 bits against the super-block's d and dmin (f16).
void QuantizeKType1(const float* x, int qmax, uint16_t* d_out, uint16_t* dmin_out, uint8_t* scales,
                    uint8_t* q /* 256 values 0..qmax */) {
  float scale[8], min[8];
  float max_scale = 0, max_min = 0;
  for (int j = 0; j < 8; ++j) {
    const float* xs = x + 32 * j;
    const float mn = std::min(0.0f, *std::min_element(xs, xs + 32));
    const float mx = *std::max_element(xs, xs + 32);
    scale[j] = (mx - mn) / qmax;
    min[j] = -mn;
    max_scale = std::max(max_scale, scale[j]);
    max_min = std::max(max_min, min[j]);
  }
  const float inv_scale = max_scale > 0 ? 63 / max_scale : 0.0f;
  const float inv_min = max_min > 0 ? 63 / max_min : 0.0f;
  uint8_t ls[8], lm[8];
  for (int j = 0; j < 8; ++j) {
    ls[j] = static_cast<uint8_t>(std::min(63, NearestInt(inv_scale * scale[j])));
    lm[j] = static_cast<uint8_t>(std::min(63, NearestInt(inv_min * min[j])));
  }
  for (int j = 0; j < 4; ++j) {
    scales[j] = static_cast<uint8_t>(ls[j] | (ls[j + 4] >> 4) << 6);
    scales[j + 4] = static_cast<uint8_t>(lm[j] | (lm[j + 4] >> 4) << 6);
    scales[j + 8] = static_cast<uint8_t>((ls[j + 4] & 15) | (lm[j + 4] & 15) << 4);
  }
  *d_out = Fp32ToFp16(max_scale / 63);
  *dmin_out = Fp32ToFp16(max_min / 63);
  const float d = Fp16ToFp32(*d_out), dmin = Fp16ToFp32(*dmin_out);
  for (int j = 0; j < 8; ++j) {
    uint8_t sc, m;
    UnpackScaleMinK4(scales, j, &sc, &m);
    const float dl = d * sc, ml = dmin * m;
    for (int l = 0; l < 32; ++l) {
      const int v = dl != 0 ? NearestInt((x[32 * j + l] + ml) / dl) : 0;
      q[32 * j + l] = static_cast<uint8_t>(std::clamp(v, 0, qmax));
    }
  }
}

void QuantizeQ4_K(const float* x, BlockQ4_K* b) {
  uint8_t q[256];
  QuantizeKType1(x, 15, &b->d, &b->dmin, b->scales, q);
  for (int c = 0; c < 4; ++c) {
    for (int l = 0; l < 32; ++l) {
      b->qs[32 * c + l] = static_cast<uint8_t>(q[64 * c + l] | q[64 * c + 32 + l] << 4);
    }
  }
}

void QuantizeQ5_K(const float* x, BlockQ5_K* b) {
  uint8_t q[256];
  QuantizeKType1(x, 31, &b->d, &b->dmin, b->scales, q);
  std::memset(b->qh, 0, sizeof(b->qh));
  for (int c = 0; c < 4; ++c) {
    for (int l = 0; l < 32; ++l) {
      const int lo = q[64 * c + l], hi = q[64 * c + 32 + l];
      b->qs[32 * c + l] = static_cast<uint8_t>((lo & 15) | (hi & 15) << 4);
      b->qh[l] |= static_cast<uint8_t>((lo >> 4) << (2 * c) | (hi >> 4) << (2 * c + 1));
    }
  }
}

void QuantizeQ6_K(const float* x, BlockQ6_K* b) {
  float scale[16];
  float max_scale = 0, amax_scale = 0;
  for (int i = 0; i < 16; ++i) {
    float amax;
    const float max = SignedAbsMax(x + 16 * i, 16, &amax);
    scale[i] = max / -32;  // q = x / scale lands in [-32, 32]
    if (std::fabs(scale[i]) > amax_scale) {
      amax_scale = std::fabs(scale[i]);
      max_scale = scale[i];
    }
  }
  const float iscale = max_scale != 0 ? -128 / max_scale : 0.0f;
  for (int i = 0; i < 16; ++i) {
    b->scales[i] = static_cast<int8_t>(std::min(127, NearestInt(iscale * scale[i])));
  }
  b->d = Fp32ToFp16(iscale != 0 ? 1 / iscale : 0.0f);
  const float d = Fp16ToFp32(b->d);
  uint8_t q[256];
  for (int i = 0; i < 16; ++i) {
    const float dl = d * b->scales[i];
    for (int l = 0; l < 16; ++l) {
      const int v = dl != 0 ? NearestInt(x[16 * i + l] / dl) : 0;
      q[16 * i + l] = static_cast<uint8_t>(std::clamp(v, -32, 31) + 32);
    }
  }
  for (int h = 0; h < 2; ++h) {
    const uint8_t* qq = q + 128 * h;
    for (int l = 0; l < 32; ++l) {
      b->ql[64 * h + l] = static_cast<uint8_t>((qq[l] & 15) | (qq[l + 64] & 15) << 4);
      b->ql[64 * h + 32 + l] = static_cast<uint8_t>((qq[l + 32] & 15) | (qq[l + 96] & 15) << 4);
      b->qh[32 * h + l] = static_cast<uint8_t>((qq[l] >> 4) | (qq[l + 32] >> 4) << 2 |
                                               (qq[l + 64] >> 4) << 4 | (qq[l + 96] >> 4) << 6);
    }
  }
}

void DequantizeQ4_K(const BlockQ4_K& b, float* y) {
  const float d = Fp16ToFp32(b.d), dmin = Fp16ToFp32(b.dmin);
  for (int c = 0; c < 4; ++c) {
    uint8_t sc0, m0, sc1, m1;
    UnpackScaleMinK4(b.scales, 2 * c, &sc0, &m0);
    UnpackScaleMinK4(b.scales, 2 * c + 1, &sc1, &m1);
    for (int l = 0; l < 32; ++l) {
      y[64 * c + l] = d * sc0 * (b.qs[32 * c + l] & 15) - dmin * m0;
      y[64 * c + 32 + l] = d * sc1 * (b.qs[32 * c + l] >> 4) - dmin * m1;
    }
  }
}

void DequantizeQ5_K(const BlockQ5_K& b, float* y) {
  const float d = Fp16ToFp32(b.d), dmin = Fp16ToFp32(b.dmin);
  for (int c = 0; c < 4; ++c) {
    uint8_t sc0, m0, sc1, m1;
    UnpackScaleMinK4(b.scales, 2 * c, &sc0, &m0);
    UnpackScaleMinK4(b.scales, 2 * c + 1, &sc1, &m1);
    for (int l = 0; l < 32; ++l) {
      const int lo = (b.qs[32 * c + l] & 15) | ((b.qh[l] >> (2 * c)) & 1) << 4;
      const int hi = (b.qs[32 * c + l] >> 4) | ((b.qh[l] >> (2 * c + 1)) & 1) << 4;
      y[64 * c + l] = d * sc0 * lo - dmin * m0;
      y[64 * c + 32 + l] = d * sc1 * hi - dmin * m1;
    }
  }
}

void DequantizeQ6_K(const BlockQ6_K& b, float* y) {
  const float d = Fp16ToFp32(b.d);
  for (int h = 0; h < 2; ++h) {
    const uint8_t* ql = b.ql + 64 * h;
    const uint8_t* qh = b.qh + 32 * h;
    float* yy = y + 128 * h;
    for (int l = 0; l < 32; ++l) {
      const int q1 = ((ql[l] & 15) | ((qh[l] >> 0) & 3) << 4) - 32;
      const int q2 = ((ql[l + 32] & 15) | ((qh[l] >> 2) & 3) << 4) - 32;
      const int q3 = ((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32;
      const int q4 = ((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32;
      // Element e uses scales[e / 16].
      yy[l] = d * b.scales[8 * h + l / 16] * q1;
      yy[l + 32] = d * b.scales[8 * h + 2 + l / 16] * q2;
      yy[l + 64] = d * b.scales[8 * h + 4 + l / 16] * q3;
      yy[l + 96] = d * b.scales[8 * h + 6 + l / 16] * q4;
    }
  }
}

template <typename Block, typename Fn>
void ForBlocks(const uint8_t* src, int64_t n, int64_t block_elems, Fn fn) {
  const Block* blocks = reinterpret_cast<const Block*>(src);
  for (int64_t i = 0; i < n / block_elems; ++i) fn(blocks[i], i * block_elems);
}

}  // namespace

bool IsSupportedWeightType(GgmlType type) {
  switch (type) {
    case GgmlType::kF32:
    case GgmlType::kF16:
    case GgmlType::kBF16:
    case GgmlType::kQ8_0:
    case GgmlType::kQ4_0:
    case GgmlType::kQ4_1:
    case GgmlType::kQ5_0:
    case GgmlType::kQ5_1:
    case GgmlType::kQ4_K:
    case GgmlType::kQ5_K:
    case GgmlType::kQ6_K:
      return true;
    default:
      return false;
  }
}

void DequantizeRowReference(GgmlType type, const uint8_t* src, int64_t n, float* out) {
  switch (type) {
    case GgmlType::kF32:
      std::memcpy(out, src, n * sizeof(float));
      break;
    case GgmlType::kF16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        out[i] = Fp16ToFp32(h);
      }
      break;
    case GgmlType::kBF16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        out[i] = Bf16ToFp32(h);
      }
      break;
    case GgmlType::kQ4_0:
      ForBlocks<BlockQ4_0>(src, n, kQk, [&](const BlockQ4_0& b, int64_t o) {
        const float d = Fp16ToFp32(b.d);
        for (int j = 0; j < 16; ++j) {
          out[o + j] = ((b.qs[j] & 15) - 8) * d;
          out[o + j + 16] = ((b.qs[j] >> 4) - 8) * d;
        }
      });
      break;
    case GgmlType::kQ4_1:
      ForBlocks<BlockQ4_1>(src, n, kQk, [&](const BlockQ4_1& b, int64_t o) {
        const float d = Fp16ToFp32(b.d), m = Fp16ToFp32(b.m);
        for (int j = 0; j < 16; ++j) {
          out[o + j] = (b.qs[j] & 15) * d + m;
          out[o + j + 16] = (b.qs[j] >> 4) * d + m;
        }
      });
      break;
    case GgmlType::kQ5_0:
      ForBlocks<BlockQ5_0>(src, n, kQk, [&](const BlockQ5_0& b, int64_t o) {
        const float d = Fp16ToFp32(b.d);
        uint32_t qh;
        std::memcpy(&qh, b.qh, 4);
        for (int j = 0; j < 16; ++j) {
          const int q0 = (b.qs[j] & 15) | ((qh >> j) & 1) << 4;
          const int q1 = (b.qs[j] >> 4) | ((qh >> (j + 16)) & 1) << 4;
          out[o + j] = (q0 - 16) * d;
          out[o + j + 16] = (q1 - 16) * d;
        }
      });
      break;
    case GgmlType::kQ5_1:
      ForBlocks<BlockQ5_1>(src, n, kQk, [&](const BlockQ5_1& b, int64_t o) {
        const float d = Fp16ToFp32(b.d), m = Fp16ToFp32(b.m);
        uint32_t qh;
        std::memcpy(&qh, b.qh, 4);
        for (int j = 0; j < 16; ++j) {
          const int q0 = (b.qs[j] & 15) | ((qh >> j) & 1) << 4;
          const int q1 = (b.qs[j] >> 4) | ((qh >> (j + 16)) & 1) << 4;
          out[o + j] = q0 * d + m;
          out[o + j + 16] = q1 * d + m;
        }
      });
      break;
    case GgmlType::kQ8_0:
      ForBlocks<BlockQ8_0>(src, n, kQk, [&](const BlockQ8_0& b, int64_t o) {
        const float d = Fp16ToFp32(b.d);
        for (int j = 0; j < 32; ++j) out[o + j] = b.qs[j] * d;
      });
      break;
    case GgmlType::kQ4_K:
      ForBlocks<BlockQ4_K>(src, n, kQkK,
                           [&](const BlockQ4_K& b, int64_t o) { DequantizeQ4_K(b, out + o); });
      break;
    case GgmlType::kQ5_K:
      ForBlocks<BlockQ5_K>(src, n, kQkK,
                           [&](const BlockQ5_K& b, int64_t o) { DequantizeQ5_K(b, out + o); });
      break;
    case GgmlType::kQ6_K:
      ForBlocks<BlockQ6_K>(src, n, kQkK,
                           [&](const BlockQ6_K& b, int64_t o) { DequantizeQ6_K(b, out + o); });
      break;
    default:
      assert(false && "unsupported weight type");
  }
}

void QuantizeRowReference(GgmlType type, const float* src, int64_t n, uint8_t* dst) {
  auto blocks = [&](auto* block_ptr, int64_t block_elems, auto quantize) {
    using Block = std::remove_pointer_t<decltype(block_ptr)>;
    Block* out = reinterpret_cast<Block*>(dst);
    for (int64_t i = 0; i < n / block_elems; ++i) quantize(src + i * block_elems, out + i);
  };
  switch (type) {
    case GgmlType::kF32:
      std::memcpy(dst, src, n * sizeof(float));
      break;
    case GgmlType::kF16:
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = Fp32ToFp16(src[i]);
        std::memcpy(dst + 2 * i, &h, 2);
      }
      break;
    case GgmlType::kBF16:
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = Fp32ToBf16(src[i]);
        std::memcpy(dst + 2 * i, &h, 2);
      }
      break;
    case GgmlType::kQ4_0:
      blocks(static_cast<BlockQ4_0*>(nullptr), kQk, QuantizeQ4_0);
      break;
    case GgmlType::kQ4_1:
      blocks(static_cast<BlockQ4_1*>(nullptr), kQk, QuantizeQ4_1);
      break;
    case GgmlType::kQ5_0:
      blocks(static_cast<BlockQ5_0*>(nullptr), kQk, QuantizeQ5_0);
      break;
    case GgmlType::kQ5_1:
      blocks(static_cast<BlockQ5_1*>(nullptr), kQk, QuantizeQ5_1);
      break;
    case GgmlType::kQ8_0:
      blocks(static_cast<BlockQ8_0*>(nullptr), kQk, QuantizeQ8_0);
      break;
    case GgmlType::kQ4_K:
      blocks(static_cast<BlockQ4_K*>(nullptr), kQkK, QuantizeQ4_K);
      break;
    case GgmlType::kQ5_K:
      blocks(static_cast<BlockQ5_K*>(nullptr), kQkK, QuantizeQ5_K);
      break;
    case GgmlType::kQ6_K:
      blocks(static_cast<BlockQ6_K*>(nullptr), kQkK, QuantizeQ6_K);
      break;
    default:
      assert(false && "unsupported weight type");
  }
}

std::vector<uint8_t> QuantizeMatrix(GgmlType type, const float* src, int64_t rows, int64_t cols) {
  const int64_t row_bytes = RowBytes(type, cols);
  assert(row_bytes > 0);
  std::vector<uint8_t> out(static_cast<size_t>(row_bytes * rows));
  for (int64_t r = 0; r < rows; ++r) {
    QuantizeRowReference(type, src + r * cols, cols, out.data() + r * row_bytes);
  }
  return out;
}

}  // namespace tandem
