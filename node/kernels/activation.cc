// Quantization of activations once per product (ActivationBatch in vec_dot.h).
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "base/fp16.h"
#include "node/kernels/quants.h"
#include "node/kernels/vec_dot.h"

namespace tandem::kernels {
namespace {

constexpr size_t Align64(size_t n) { return (n + 63) / 64 * 64; }

enum class Kind { kF32, kF16, kBF16, kQ8_0, kQ8_K };

Kind KindFor(GgmlType type) {
  switch (type) {
    case GgmlType::kF32:
      return Kind::kF32;
    case GgmlType::kF16:
      return Kind::kF16;
    case GgmlType::kBF16:
      return Kind::kBF16;
    case GgmlType::kQ4_K:
    case GgmlType::kQ5_K:
    case GgmlType::kQ6_K:
      return Kind::kQ8_K;
    default:
      return Kind::kQ8_0;
  }
}

// max(amax, |v|) as a plain compare: std::fmax stays a libm call (NaN rules) and does not
// vectorize; the activations are finite.
inline float MaxAbs(float amax, float v) {
  const float a = std::fabs(v);
  return a > amax ? a : amax;
}

// round(v) as int8, for |v| <= 127 as the scales make it; NaN (activations come off the
// wire) becomes -127 rather than an undefined cast.
inline int8_t ToInt8(float v) {
  return static_cast<int8_t>(std::nearbyint(v > -127.0f ? (v < 127.0f ? v : 127.0f) : -127.0f));
}

// x of n (a multiple of 32) elements -> int8 blocks of 32 with f16-rounded scales.
__attribute__((target_clones("arch=x86-64-v4", "avx2,fma", "default"))) void QuantizeQ8_0(
    const float* x, int64_t n, int8_t* qs, float* d_out, float* s_out, int32_t* isum_out,
    int32_t* lane_sums) {
  for (int64_t b = 0; b < n / 32; ++b) {
    const float* xb = x + 32 * b;
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = MaxAbs(amax, xb[j]);
    // As llama.cpp's CPU quantize_row_q8_0: the multiplier is 127 / amax, not 1 / d (they
    // differ in the last bit often enough to move a rounding), and the stored scale is
    // amax / 127 rounded to f16.
    const float d = amax / 127;
    const float id = amax != 0 ? 127 / amax : 0.0f;
    int32_t sum = 0;
    for (int j = 0; j < 32; ++j) {
      const int8_t q = ToInt8(xb[j] * id);
      qs[32 * b + j] = q;
      sum += q;
    }
    for (int l = 0; l < 8; ++l) {
      const int8_t* q = qs + 32 * b + 4 * l;
      lane_sums[8 * b + l] = q[0] + q[1] + q[2] + q[3];
    }
    d_out[b] = Fp16ToFp32(Fp32ToFp16(d));
    isum_out[b] = sum;
    s_out[b] = Fp16ToFp32(Fp32ToFp16(d * static_cast<float>(sum)));
  }
}

__attribute__((target_clones("arch=x86-64-v4", "avx2,fma", "default"))) void QuantizeQ8_K(
    const float* x, int64_t n, int8_t* qs, float* d_out, int16_t* bsums, int16_t* bsums32) {
  for (int64_t b = 0; b < n / 256; ++b) {
    const float* xb = x + 256 * b;
    float amax = 0;
    for (int j = 0; j < 256; ++j) amax = MaxAbs(amax, xb[j]);
    // As llama.cpp's quantize_row_q8_K: the multiplier is 127 / max (max the element of
    // largest magnitude; its sign flips every quant and the scale alike, so the products do
    // not change) and the scale is 1 / multiplier, kept in f32.
    const float id = amax != 0 ? 127 / amax : 0.0f;
    const float d = amax != 0 ? 1 / id : 0.0f;
    for (int j = 0; j < 256; ++j) {
      qs[256 * b + j] = ToInt8(xb[j] * id);
    }
    for (int g = 0; g < 16; ++g) {
      int sum = 0;
      for (int j = 0; j < 16; ++j) sum += qs[256 * b + 16 * g + j];
      bsums[16 * b + g] = static_cast<int16_t>(sum);
    }
    for (int g = 0; g < 8; ++g) {
      bsums32[8 * b + g] = static_cast<int16_t>(bsums[16 * b + 2 * g] + bsums[16 * b + 2 * g + 1]);
    }
    d_out[b] = d;
  }
}

}  // namespace

void ActivationBatch::Free::operator()(void* p) const { std::free(p); }

void ActivationBatch::Prepare(GgmlType type, const float* x, int64_t n_batch, int64_t n,
                              ThreadPool& pool) {
  const size_t nb = static_cast<size_t>(n / 32 + 1);
  const size_t f_bytes = Align64(4 * n), q_bytes = Align64(n), per_block = Align64(4 * nb),
               bsum_bytes = Align64(2 * (n / 16 + 1)), bsum32_bytes = Align64(2 * (n / 32 + 1));
  const size_t lane_bytes = Align64(4 * 8 * nb);
  const size_t stride = f_bytes + q_bytes + 3 * per_block + bsum_bytes + bsum32_bytes + lane_bytes;
  const size_t need = stride * static_cast<size_t>(n_batch);
  if (need > capacity_) {
    storage_.reset(static_cast<uint8_t*>(std::aligned_alloc(64, need)));
    capacity_ = need;
  }
  if (n_batch > rows_capacity_) {
    rows_.reset(new Activation[n_batch]);
    rows_capacity_ = n_batch;
  }
  const Kind kind = KindFor(type);
  auto prepare_row = [&](int64_t b) {
    uint8_t* base = storage_.get() + stride * b;
    float* f = reinterpret_cast<float*>(base);
    int8_t* qs = reinterpret_cast<int8_t*>(base + f_bytes);
    float* d = reinterpret_cast<float*>(base + f_bytes + q_bytes);
    float* s = reinterpret_cast<float*>(base + f_bytes + q_bytes + per_block);
    int32_t* isum = reinterpret_cast<int32_t*>(base + f_bytes + q_bytes + 2 * per_block);
    int16_t* bsums = reinterpret_cast<int16_t*>(base + f_bytes + q_bytes + 3 * per_block);
    int16_t* bsums32 =
        reinterpret_cast<int16_t*>(base + f_bytes + q_bytes + 3 * per_block + bsum_bytes);
    int32_t* lane_sums = reinterpret_cast<int32_t*>(base + f_bytes + q_bytes + 3 * per_block +
                                                    bsum_bytes + bsum32_bytes);
    const float* xb = x + b * n;
    Activation& a = rows_[b];
    a = Activation{};
    a.n = n;
    switch (kind) {
      case Kind::kF32:
        a.f = xb;  // used in place
        break;
      case Kind::kF16:
        for (int64_t i = 0; i < n; ++i) f[i] = Fp16ToFp32(Fp32ToFp16(xb[i]));
        a.f = f;
        break;
      case Kind::kBF16:
        for (int64_t i = 0; i < n; ++i) f[i] = Bf16ToFp32(Fp32ToBf16(xb[i]));
        a.f = f;
        break;
      case Kind::kQ8_0:
        QuantizeQ8_0(xb, n, qs, d, s, isum, lane_sums);
        a.qs = qs;
        a.d = d;
        a.s = s;
        a.isum = isum;
        a.lane_sums = lane_sums;
        break;
      case Kind::kQ8_K:
        QuantizeQ8_K(xb, n, qs, d, bsums, bsums32);
        a.qs = qs;
        a.d = d;
        a.bsums = bsums;
        a.bsums32 = bsums32;
        break;
    }
  };
  if (n_batch == 1) {
    prepare_row(0);
  } else {
    pool.ParallelFor(n_batch, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) prepare_row(b);
    });
  }
}

}  // namespace tandem::kernels
