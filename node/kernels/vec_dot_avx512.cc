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

// llama.cpp's order of float sums (vec_dot_scalar.cc): per block, lane s of a row (the
// integer sum over elements 4s..4s+3) is one VNNI step from -offset * (activation sum over
// those 4), and has its own f32 accumulator; the 8 lanes are added as llama.cpp's tree at
// the end (vertical adds here: lane r of every vector is row r). kTokens <= 2 keeps the 8
// accumulators per token in registers; more tokens take more passes over the group.
template <int kTokens, bool kQ4>
void ExactInterleavedTokens(const uint8_t* group, int64_t nb, const Activation* x, float* y,
                            int64_t y_stride) {
  constexpr int kBlockBytes = 32 + (kQ4 ? 256 : 512);
  constexpr int kShift = kQ4 ? 3 : 7;  // offsets 8 and 128
  const __m512i m4 = _mm512_set1_epi8(0x0f);
  __m512 acc[kTokens][8];
  for (int t = 0; t < kTokens; ++t) {
    for (int s = 0; s < 8; ++s) acc[t][s] = _mm512_setzero_ps();
  }
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = group + b * kBlockBytes;
    for (int l = 0; l < kBlockBytes; l += 64) Prefetch(blk + kPrefetchAhead + l);
    const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk)));
    __m512 scale[kTokens];
    for (int t = 0; t < kTokens; ++t) scale[t] = _mm512_mul_ps(dw, _mm512_set1_ps(x[t].d[b]));
    for (int s = 0; s < 8; ++s) {
      __m512i q;
      if constexpr (kQ4) {  // lane s < 4: low nibbles of chunk s; s >= 4: high of chunk s - 4
        const __m512i v = _mm512_loadu_si512(blk + 32 + 64 * (s % 4));
        q = _mm512_and_si512(s < 4 ? v : _mm512_srli_epi16(v, 4), m4);
      } else {
        q = _mm512_loadu_si512(blk + 32 + 64 * s);
      }
      for (int t = 0; t < kTokens; ++t) {
        int32_t four;
        std::memcpy(&four, x[t].qs + 32 * b + 4 * s, 4);
        const __m512i init = _mm512_set1_epi32(-(x[t].lane_sums[8 * b + s] << kShift));
        const __m512i dot = _mm512_dpbusd_epi32(init, q, _mm512_set1_epi32(four));
        acc[t][s] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), scale[t], acc[t][s]);
      }
    }
  }
  for (int t = 0; t < kTokens; ++t) {
    const __m512 a0 = _mm512_add_ps(acc[t][0], acc[t][4]), a1 = _mm512_add_ps(acc[t][1], acc[t][5]);
    const __m512 a2 = _mm512_add_ps(acc[t][2], acc[t][6]), a3 = _mm512_add_ps(acc[t][3], acc[t][7]);
    _mm512_storeu_ps(y + t * y_stride, _mm512_add_ps(_mm512_add_ps(a0, a2), _mm512_add_ps(a1, a3)));
  }
}

template <bool kQ4>
void ExactInterleaved16(const uint8_t* w, int64_t group_bytes, int64_t n_groups,
                        const Activation* x, int n_tokens, float* y, int64_t y_stride) {
  const int64_t nb = x[0].n / 32;
  for (int64_t g = 0; g < n_groups; ++g) {
    const uint8_t* group = w + g * group_bytes;
    int t = 0;
    for (; t + 2 <= n_tokens; t += 2) {
      ExactInterleavedTokens<2, kQ4>(group, nb, x + t, y + t * y_stride + 16 * g, y_stride);
    }
    if (t < n_tokens) {
      ExactInterleavedTokens<1, kQ4>(group, nb, x + t, y + t * y_stride + 16 * g, y_stride);
    }
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

// Q4_K / Q5_K groups (vec_dot.h): per 32-element sub-block, 8 VNNI steps give each token's
// int32 dot product for the 16 rows, times the rows' scales (one multiply per token); the
// mins take 4 VNNI int16 steps per token against the activation's sums per 32.
template <int kTokens, bool kQ5>
void Q45KInterleaved16Rows(const uint8_t* w, int64_t group_bytes, int64_t n_groups,
                           const Activation* x, float* y, int64_t y_stride) {
  constexpr int kBlockBytes = kQ5 ? kQ5KInterleavedBlockBytes : kQ4KInterleavedBlockBytes;
  const int64_t nb = x[0].n / 256;
  const __m512i m4 = _mm512_set1_epi8(0x0f), bit4 = _mm512_set1_epi8(0x10);
  for (int64_t g = 0; g < n_groups; ++g) {
    const uint8_t* group = w + g * group_bytes;
    __m512 acc[kTokens];
    for (int t = 0; t < kTokens; ++t) acc[t] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* blk = group + b * kBlockBytes;
      for (int l = 0; l < kBlockBytes; l += 64) Prefetch(blk + kPrefetchAhead + l);
      __m512i isum[kTokens];
      for (int t = 0; t < kTokens; ++t) isum[t] = _mm512_setzero_si512();
      for (int j = 0; j < 8; ++j) {
        const __m512i sc = _mm512_cvtepu8_epi32(
            _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 64 + 16 * j)));
        const uint8_t* chunks = blk + 320 + 512 * (j / 2);
        __m512i q[8];
        for (int k = 0; k < 8; ++k) {
          const __m512i v = _mm512_loadu_si512(chunks + 64 * k);
          q[k] = _mm512_and_si512(j % 2 == 0 ? v : _mm512_srli_epi16(v, 4), m4);
          if constexpr (kQ5) {  // bit j of qh is bit 4 of sub-block j's quants
            const __m512i h = _mm512_loadu_si512(blk + 320 + 2048 + 64 * k);
            const __m512i at4 = j <= 4 ? _mm512_slli_epi16(h, 4 - j) : _mm512_srli_epi16(h, j - 4);
            q[k] = _mm512_or_si512(q[k], _mm512_and_si512(at4, bit4));
          }
        }
        for (int t = 0; t < kTokens; ++t) {
          const int8_t* xq = x[t].qs + 256 * b + 32 * j;
          __m512i dot = _mm512_setzero_si512();
          for (int k = 0; k < 8; ++k) {
            int32_t four;
            std::memcpy(&four, xq + 4 * k, 4);
            dot = _mm512_dpbusd_epi32(dot, q[k], _mm512_set1_epi32(four));
          }
          isum[t] = _mm512_add_epi32(isum[t], _mm512_mullo_epi32(dot, sc));
        }
      }
      __m512i mins[4];
      for (int p = 0; p < 4; ++p) {
        mins[p] = _mm512_cvtepu8_epi16(
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 192 + 32 * p)));
      }
      const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk)));
      const __m512 dmin =
          _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 32)));
      for (int t = 0; t < kTokens; ++t) {
        __m512i msum = _mm512_setzero_si512();
        for (int p = 0; p < 4; ++p) {
          int32_t pair;
          std::memcpy(&pair, x[t].bsums32 + 8 * b + 2 * p, 4);
          msum = _mm512_dpwssd_epi32(msum, mins[p], _mm512_set1_epi32(pair));
        }
        const __m512 dx = _mm512_set1_ps(x[t].d[b]);
        acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[t]), _mm512_mul_ps(dw, dx), acc[t]);
        acc[t] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(msum), _mm512_mul_ps(dmin, dx), acc[t]);
      }
    }
    for (int t = 0; t < kTokens; ++t) _mm512_storeu_ps(y + t * y_stride + 16 * g, acc[t]);
  }
}

// Q6_K groups (vec_dot.h): per 32 elements, the 6-bit quants (0..63) are rebuilt from a
// low-nibble chunk and a 2-bit chunk; each token's dot per 16-element sub-block is scaled by
// the rows' int8 scales; the -32 offset adds -32 * scale * sum(activation per 16), one VNNI
// int16 step per token for two sub-blocks.
template <int kTokens>
void Q6KInterleaved16Rows(const uint8_t* w, int64_t group_bytes, int64_t n_groups,
                          const Activation* x, float* y, int64_t y_stride) {
  constexpr int kBlockBytes = kQ6KInterleavedBlockBytes;
  const int64_t nb = x[0].n / 256;
  const __m512i m4 = _mm512_set1_epi8(0x0f), m30 = _mm512_set1_epi8(0x30);
  for (int64_t g = 0; g < n_groups; ++g) {
    const uint8_t* group = w + g * group_bytes;
    __m512 acc[kTokens];
    for (int t = 0; t < kTokens; ++t) acc[t] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* blk = group + b * kBlockBytes;
      for (int l = 0; l < kBlockBytes; l += 64) Prefetch(blk + kPrefetchAhead + l);
      __m512i isum[kTokens];
      for (int t = 0; t < kTokens; ++t) isum[t] = _mm512_setzero_si512();
      for (int h = 0; h < 2; ++h) {
        const uint8_t* half = blk + 320 + 1536 * h;
        for (int quarter = 0; quarter < 4; ++quarter) {
          // Row r's scales of sub-blocks 8h + 2 quarter (+1): the two int16 of lane r.
          const __m512i pair = _mm512_cvtepi8_epi16(_mm256_loadu_si256(
              reinterpret_cast<const __m256i*>(blk + 64 + 32 * (4 * h + quarter))));
          const __m512i sc_lo = _mm512_srai_epi32(_mm512_slli_epi32(pair, 16), 16);
          const __m512i sc_hi = _mm512_srai_epi32(pair, 16);
          // -32 * scale (fits int16) for the offset term.
          const __m512i pair_m32 =
              _mm512_sub_epi16(_mm512_setzero_si512(), _mm512_slli_epi16(pair, 5));
          const uint8_t* low = half + 512 * (quarter % 2);
          __m512i q[8];
          for (int k = 0; k < 8; ++k) {
            const __m512i ql = _mm512_loadu_si512(low + 64 * k);
            const __m512i qh = _mm512_loadu_si512(half + 1024 + 64 * k);
            const __m512i lo4 = _mm512_and_si512(quarter < 2 ? ql : _mm512_srli_epi16(ql, 4), m4);
            __m512i hi2;
            switch (quarter) {
              case 0:
                hi2 = _mm512_slli_epi16(qh, 4);
                break;
              case 1:
                hi2 = _mm512_slli_epi16(qh, 2);
                break;
              case 2:
                hi2 = qh;
                break;
              default:
                hi2 = _mm512_srli_epi16(qh, 2);
            }
            q[k] = _mm512_or_si512(lo4, _mm512_and_si512(hi2, m30));
          }
          for (int t = 0; t < kTokens; ++t) {
            const int8_t* xq = x[t].qs + 256 * b + 128 * h + 32 * quarter;
            __m512i dot0 = _mm512_setzero_si512(), dot1 = _mm512_setzero_si512();
            for (int k = 0; k < 4; ++k) {
              int32_t four0, four1;
              std::memcpy(&four0, xq + 4 * k, 4);
              std::memcpy(&four1, xq + 16 + 4 * k, 4);
              dot0 = _mm512_dpbusd_epi32(dot0, q[k], _mm512_set1_epi32(four0));
              dot1 = _mm512_dpbusd_epi32(dot1, q[k + 4], _mm512_set1_epi32(four1));
            }
            int32_t sums;
            std::memcpy(&sums, x[t].bsums + 16 * b + 2 * (4 * h + quarter), 4);
            isum[t] = _mm512_dpwssd_epi32(isum[t], pair_m32, _mm512_set1_epi32(sums));
            isum[t] = _mm512_add_epi32(isum[t], _mm512_add_epi32(_mm512_mullo_epi32(dot0, sc_lo),
                                                                 _mm512_mullo_epi32(dot1, sc_hi)));
          }
        }
      }
      const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk)));
      for (int t = 0; t < kTokens; ++t) {
        acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[t]),
                                 _mm512_mul_ps(dw, _mm512_set1_ps(x[t].d[b])), acc[t]);
      }
    }
    for (int t = 0; t < kTokens; ++t) _mm512_storeu_ps(y + t * y_stride + 16 * g, acc[t]);
  }
}

// Instantiates Rows<1..8> and picks the one for n_tokens.
template <template <int> class Rows>
void ForTokens(const uint8_t* w, int64_t group_bytes, int64_t n_groups, const Activation* x,
               int n_tokens, float* y, int64_t y_stride) {
  switch (n_tokens) {
    case 1:
      return Rows<1>::Run(w, group_bytes, n_groups, x, y, y_stride);
    case 2:
      return Rows<2>::Run(w, group_bytes, n_groups, x, y, y_stride);
    case 3:
      return Rows<3>::Run(w, group_bytes, n_groups, x, y, y_stride);
    case 4:
      return Rows<4>::Run(w, group_bytes, n_groups, x, y, y_stride);
    case 5:
      return Rows<5>::Run(w, group_bytes, n_groups, x, y, y_stride);
    case 6:
      return Rows<6>::Run(w, group_bytes, n_groups, x, y, y_stride);
    case 7:
      return Rows<7>::Run(w, group_bytes, n_groups, x, y, y_stride);
    default:
      return Rows<8>::Run(w, group_bytes, n_groups, x, y, y_stride);
  }
}
template <int kTokens>
struct Q4K {
  static constexpr auto Run = Q45KInterleaved16Rows<kTokens, false>;
};
template <int kTokens>
struct Q5K {
  static constexpr auto Run = Q45KInterleaved16Rows<kTokens, true>;
};
template <int kTokens>
struct Q6K {
  static constexpr auto Run = Q6KInterleaved16Rows<kTokens>;
};

}  // namespace

GroupsDotFn Avx512Interleaved16Kernel(GgmlType type, int64_t rows) {
  switch (type) {
    case GgmlType::kQ4_0:  // rows a multiple of 8: llama.cpp's repacked order is the block's
      return ExactSums() && rows % 8 != 0 ? ExactInterleaved16<true> : Interleaved16<true>;
    case GgmlType::kQ8_0:
      return ExactSums() ? ExactInterleaved16<false> : Interleaved16<false>;
    case GgmlType::kQ4_K:
      return ForTokens<Q4K>;
    case GgmlType::kQ5_K:
      return ForTokens<Q5K>;
    case GgmlType::kQ6_K:
      return ForTokens<Q6K>;
    default:
      return Interleaved16<false>;
  }
}

}  // namespace tandem::kernels
