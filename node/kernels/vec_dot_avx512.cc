// AVX-512 (F/BW/VL) + VNNI kernels: the shared x86 code with VNNI dot products (see
// vec_dot_x86.h).
#include <immintrin.h>

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "node/kernels/quants.h"
#include "node/kernels/vec_dot.h"

#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")
// GCC 12 reports its own _mm512_undefined_* helpers as maybe-uninitialized.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#define TANDEM_X86_VNNI 1

namespace tandem::kernels {
namespace {
#include "node/kernels/vec_dot_x86.h"
}  // namespace

const KernelTable& Avx512Kernels() { return kTable; }

}  // namespace tandem::kernels

namespace tandem::kernels {
namespace {

// kInterleaved16 groups (vec_dot.h): lane r of every vector is row r of the group. Per
// block, the weights are decoded once into 8 vectors of 16 rows x 4 elements, then each
// token's int32 sums take 8 VNNI steps against its 4-byte activation groups (broadcast),
// starting from -offset * sum(activation block) so the unsigned weights need no fix-up.
template <int kTokens, bool kQ4>
void Interleaved16Rows(const uint8_t* w, int64_t group_bytes, int64_t n_groups, const Activation* x,
                       float* y, int64_t y_stride) {
  constexpr int kQuantBytes = kQ4 ? 256 : 512;
  constexpr int kBlockBytes = 32 + kQuantBytes;
  constexpr int kOffset = kQ4 ? 8 : 128;
  const int64_t nb = x[0].n / 32;
  const __m512i m4 = _mm512_set1_epi8(0x0f);
  for (int64_t g = 0; g < n_groups; ++g) {
    const uint8_t* group = w + g * group_bytes;
    __m512 acc[kTokens];
    for (int t = 0; t < kTokens; ++t) acc[t] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* blk = group + b * kBlockBytes;
      for (int l = 0; l < kBlockBytes; l += 64) Prefetch(blk + kPrefetchAhead + l);
      const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk)));
      __m512i q[8];
      if constexpr (kQ4) {
        for (int m = 0; m < 4; ++m) {
          const __m512i v = _mm512_loadu_si512(blk + 32 + 64 * m);
          q[m] = _mm512_and_si512(v, m4);
          q[m + 4] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
        }
      } else {
        for (int s = 0; s < 8; ++s) q[s] = _mm512_loadu_si512(blk + 32 + 64 * s);
      }
      for (int t = 0; t < kTokens; ++t) {
        const int8_t* xq = x[t].qs + 32 * b;
        __m512i isum = _mm512_set1_epi32(-kOffset * x[t].isum[b]);
        for (int s = 0; s < 8; ++s) {
          int32_t four;
          std::memcpy(&four, xq + 4 * s, 4);
          isum = _mm512_dpbusd_epi32(isum, q[s], _mm512_set1_epi32(four));
        }
        acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum),
                                 _mm512_mul_ps(dw, _mm512_set1_ps(x[t].d[b])), acc[t]);
      }
    }
    for (int t = 0; t < kTokens; ++t) _mm512_storeu_ps(y + t * y_stride + 16 * g, acc[t]);
  }
}

template <bool kQ4>
void Interleaved16(const uint8_t* w, int64_t group_bytes, int64_t n_groups, const Activation* x,
                   int n_tokens, float* y, int64_t y_stride) {
  switch (n_tokens) {
    case 1:
      return Interleaved16Rows<1, kQ4>(w, group_bytes, n_groups, x, y, y_stride);
    case 2:
      return Interleaved16Rows<2, kQ4>(w, group_bytes, n_groups, x, y, y_stride);
    case 3:
      return Interleaved16Rows<3, kQ4>(w, group_bytes, n_groups, x, y, y_stride);
    case 4:
      return Interleaved16Rows<4, kQ4>(w, group_bytes, n_groups, x, y, y_stride);
    case 5:
      return Interleaved16Rows<5, kQ4>(w, group_bytes, n_groups, x, y, y_stride);
    case 6:
      return Interleaved16Rows<6, kQ4>(w, group_bytes, n_groups, x, y, y_stride);
    case 7:
      return Interleaved16Rows<7, kQ4>(w, group_bytes, n_groups, x, y, y_stride);
    default:
      return Interleaved16Rows<8, kQ4>(w, group_bytes, n_groups, x, y, y_stride);
  }
}

}  // namespace

GroupsDotFn Avx512Interleaved16Kernel(GgmlType type) {
  return type == GgmlType::kQ4_0 ? Interleaved16<true> : Interleaved16<false>;
}

}  // namespace tandem::kernels
