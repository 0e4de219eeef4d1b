// x86 SIMD row kernels shared by vec_dot_avx2.cc and vec_dot_avx512.cc. Each of those
// files includes every other header first, then sets `#pragma GCC target(...)`, defines
// TANDEM_X86_VNNI or not, and includes this file inside an anonymous namespace, so the
// code is compiled once per instruction set with internal linkage (no symbol built for
// one ISA can be picked by the linker for another).
//
// Activation layout: see Activation in vec_dot.h. Integer dot products are u8 x s8: every
// weight format is decoded to unsigned bytes (nibbles, 5- or 6-bit values, or Q8_0 + 128)
// and the offset is taken out with the activation's block sums.

inline __m256i DotU8S8(__m256i acc, __m256i u, __m256i s) {
#ifdef TANDEM_X86_VNNI
  return _mm256_dpbusd_epi32(acc, u, s);
#else
  // maddubs pairs stay within int16 for u <= 63 (2 * 63 * 127 < 32767).
  return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
#endif
}

// acc += pairwise int16 products p16 * sc16, in int32.
inline __m256i DotI16(__m256i acc, __m256i p16, __m256i sc16) {
#ifdef TANDEM_X86_VNNI
  return _mm256_dpwssd_epi32(acc, p16, sc16);
#else
  return _mm256_add_epi32(acc, _mm256_madd_epi16(p16, sc16));
#endif
}

inline float HorizontalSum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline int32_t HorizontalSumI32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
  return _mm_cvtsi128_si32(s);
}

inline float HalfToFloat(uint16_t h) { return _cvtsh_ss(h); }

inline void Prefetch(const void* p) { _mm_prefetch(static_cast<const char*>(p), _MM_HINT_T0); }

// How far ahead of the current block to prefetch (bytes): ~1 KiB keeps enough lines in
// flight to cover memory latency at the per-core bandwidth.
constexpr int64_t kPrefetchAhead = 1024;

// 32 nibbles of one 32-block (16 bytes) as bytes in element order: low nibbles then high.
inline __m256i Nibbles32(const uint8_t* qs) {
  const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m256i both = _mm256_set_m128i(_mm_srli_epi16(q, 4), q);
  return _mm256_and_si256(both, _mm256_set1_epi8(0x0f));
}

// 0x10 in byte j where bit j of the 32-bit qh is set.
inline __m256i HighBits32(const uint8_t* qh_bytes) {
  uint32_t qh;
  std::memcpy(&qh, qh_bytes, 4);
  const __m256i spread = _mm256_shuffle_epi8(
      _mm256_set1_epi32(static_cast<int>(qh)),
      _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0));
  const __m256i bit = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201ULL));
  const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
  return _mm256_and_si256(set, _mm256_set1_epi8(0x10));
}

// ---- float weights ----

inline __m256 LoadF32x8(const uint8_t* p) {
  return _mm256_loadu_ps(reinterpret_cast<const float*>(p));
}
inline __m256 LoadF16x8(const uint8_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
inline __m256 LoadBf16x8(const uint8_t* p) {
  const __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}

template <int kBytes, __m256 (*Load)(const uint8_t*)>
void FloatRows(const uint8_t* w, int64_t row_bytes, int64_t n_rows, const Activation& x, float* y) {
  const int64_t n = x.n;
  for (int64_t r = 0; r < n_rows; ++r) {
    const uint8_t* row = w + r * row_bytes;
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                     _mm256_setzero_ps()};
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
      Prefetch(row + (i * kBytes) + kPrefetchAhead);
      for (int k = 0; k < 4; ++k) {
        acc[k] = _mm256_fmadd_ps(Load(row + (i + 8 * k) * kBytes), _mm256_loadu_ps(x.f + i + 8 * k),
                                 acc[k]);
      }
    }
    for (; i + 8 <= n; i += 8) {
      acc[0] = _mm256_fmadd_ps(Load(row + i * kBytes), _mm256_loadu_ps(x.f + i), acc[0]);
    }
    float sum =
        HorizontalSum(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
    for (; i < n; ++i) {  // n % 8 != 0 only for odd float shapes
      float wv;
      if constexpr (kBytes == 4) {
        std::memcpy(&wv, row + 4 * i, 4);
      } else {
        uint16_t h;
        std::memcpy(&h, row + 2 * i, 2);
        wv = _mm256_cvtss_f32(Load == LoadF16x8
                                  ? _mm256_set1_ps(_cvtsh_ss(h))
                                  : _mm256_set1_ps(__builtin_bit_cast(float, uint32_t{h} << 16)));
      }
      sum += wv * x.f[i];
    }
    y[r] = sum;
  }
}

// llama.cpp's order for f32 and f16 weights (ggml_vec_dot_f32 / _f16; see F32Rows and
// F16Rows in vec_dot_scalar.cc): 4 x 16 f32 lanes (here 8 halves of 8) over steps of 64, the
// vectors added 0 += 2, 1 += 3, 0 += 1, the 16 lanes as a halving tree (the low and high 8
// first, then HorizontalSum's order); the leftover products join one at a time, in double
// for f16 (a product, then a sum: never fused, hence no contraction), for f32 in float as
// kernels::F32Leftovers orders them.
template <bool kF16>
__attribute__((optimize("fp-contract=off"))) void LlamaOrderRows(const uint8_t* w,
                                                                 int64_t row_bytes, int64_t n_rows,
                                                                 const Activation& x, float* y) {
  constexpr int kBytes = kF16 ? 2 : 4;
  const int64_t n = x.n, n_steps = n / 64 * 64;
  for (int64_t r = 0; r < n_rows; ++r) {
    const uint8_t* row = w + r * row_bytes;
    __m256 acc[8];
    for (int k = 0; k < 8; ++k) acc[k] = _mm256_setzero_ps();
    for (int64_t i = 0; i < n_steps; i += 64) {
      Prefetch(row + kBytes * i + kPrefetchAhead);
      for (int k = 0; k < 8; ++k) {
        const uint8_t* p = row + kBytes * (i + 8 * k);
        acc[k] = _mm256_fmadd_ps(kF16 ? LoadF16x8(p) : LoadF32x8(p),
                                 _mm256_loadu_ps(x.f + i + 8 * k), acc[k]);
      }
    }
    // Vector j of 16 lanes is acc[2j] (lanes 0..7) and acc[2j + 1] (lanes 8..15).
    for (int k = 0; k < 4; ++k) acc[k] = _mm256_add_ps(acc[k], acc[k + 4]);
    for (int k = 0; k < 2; ++k) acc[k] = _mm256_add_ps(acc[k], acc[k + 2]);
    const float vector_sum = HorizontalSum(_mm256_add_ps(acc[0], acc[1]));
    if constexpr (kF16) {
      double sum = vector_sum;
      for (int64_t i = n_steps; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, row + 2 * i, 2);
        sum += static_cast<double>(_cvtsh_ss(h) * x.f[i]);
      }
      y[r] = static_cast<float>(sum);
    } else {
      y[r] = F32Leftovers(reinterpret_cast<const float*>(row), x.f, n_steps, n, vector_sum);
    }
  }
}

// ---- 32-element block types ----

// Decoders: unsigned element bytes of block b, its offset (subtracted via the activation
// sums), and for the "type-1" formats the min.
struct Q4_0Decoder {
  using Block = BlockQ4_0;
  static constexpr int kOffset = 8;
  static constexpr bool kHasMin = false;
  static __m256i Quants(const Block& b) { return Nibbles32(b.qs); }
};
struct Q4_1Decoder {
  using Block = BlockQ4_1;
  static constexpr int kOffset = 0;
  static constexpr bool kHasMin = true;
  static __m256i Quants(const Block& b) { return Nibbles32(b.qs); }
};
struct Q5_0Decoder {
  using Block = BlockQ5_0;
  static constexpr int kOffset = 16;
  static constexpr bool kHasMin = false;
  static __m256i Quants(const Block& b) {
    return _mm256_or_si256(Nibbles32(b.qs), HighBits32(b.qh));
  }
};
struct Q5_1Decoder {
  using Block = BlockQ5_1;
  static constexpr int kOffset = 0;
  static constexpr bool kHasMin = true;
  static __m256i Quants(const Block& b) {
    return _mm256_or_si256(Nibbles32(b.qs), HighBits32(b.qh));
  }
};

// -offset * (activation sum per 4 elements) of block i: the 8 int32 lanes that take an
// unsigned weight's offset out lane by lane (offset a power of two).
template <int kOffset>
inline __m256i LaneOffsets(const Activation& x, int64_t i) {
  constexpr int kShift = kOffset == 8 ? 3 : (kOffset == 16 ? 4 : 7);
  static_assert(kOffset == 1 << kShift);
  const __m256i sums = _mm256_load_si256(reinterpret_cast<const __m256i*>(x.lane_sums + 8 * i));
  return _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(sums, kShift));
}

// llama.cpp's order (see vec_dot_scalar.cc): one 8-lane accumulator, lane l of a block is
// the integer sum over elements 4l..4l+3, one fused multiply-add per block, then the tree.
template <typename D>
void Q32Rows(const uint8_t* w, int64_t row_bytes, int64_t n_rows, const Activation& x, float* y) {
  const int64_t nb = x.n / 32;
  for (int64_t r = 0; r < n_rows; ++r) {
    const typename D::Block* blocks = reinterpret_cast<const typename D::Block*>(w + r * row_bytes);
    __m256 acc = _mm256_setzero_ps();
    float min_sum = 0;
    for (int64_t i = 0; i < nb; ++i) {
      if (i % 2 == 0) Prefetch(reinterpret_cast<const uint8_t*>(blocks + i) + kPrefetchAhead);
      const __m256i ys = _mm256_load_si256(reinterpret_cast<const __m256i*>(x.qs + 32 * i));
      __m256i init = _mm256_setzero_si256();
      if constexpr (D::kOffset != 0) init = LaneOffsets<D::kOffset>(x, i);
      const __m256i dot = DotU8S8(init, D::Quants(blocks[i]), ys);
      const float scale = HalfToFloat(blocks[i].d) * x.d[i];
      acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_set1_ps(scale), acc);
      if constexpr (D::kHasMin) min_sum += HalfToFloat(blocks[i].m) * x.s[i];
    }
    y[r] = HorizontalSum(acc) + min_sum;
  }
}

// Q4_0 in the order of llama.cpp's repacked Q4_0 (see Q4_0RepackedRows in vec_dot_scalar.cc):
// the whole block's integer sum, then one fused multiply-add per block.
void Q4_0RepackedRows(const uint8_t* w, int64_t row_bytes, int64_t n_rows, const Activation& x,
                      float* y) {
  const int64_t nb = x.n / 32;
  for (int64_t r = 0; r < n_rows; ++r) {
    const BlockQ4_0* blocks = reinterpret_cast<const BlockQ4_0*>(w + r * row_bytes);
    float acc = 0;
    for (int64_t i = 0; i < nb; ++i) {
      if (i % 2 == 0) Prefetch(reinterpret_cast<const uint8_t*>(blocks + i) + kPrefetchAhead);
      const __m256i ys = _mm256_load_si256(reinterpret_cast<const __m256i*>(x.qs + 32 * i));
      const __m256i dot = DotU8S8(LaneOffsets<8>(x, i), Q4_0Decoder::Quants(blocks[i]), ys);
      const float scale = HalfToFloat(blocks[i].d) * x.d[i];
      acc = __builtin_fmaf(static_cast<float>(HorizontalSumI32(dot)), scale, acc);
    }
    y[r] = acc;
  }
}

void Q8_0Rows(const uint8_t* w, int64_t row_bytes, int64_t n_rows, const Activation& x, float* y) {
  const int64_t nb = x.n / 32;
  for (int64_t r = 0; r < n_rows; ++r) {
    const BlockQ8_0* blocks = reinterpret_cast<const BlockQ8_0*>(w + r * row_bytes);
    __m256 acc = _mm256_setzero_ps();
    auto one_block = [&](int64_t i) {
      const __m256i ys = _mm256_load_si256(reinterpret_cast<const __m256i*>(x.qs + 32 * i));
      const __m256i ws = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blocks[i].qs));
#ifdef TANDEM_X86_VNNI
      // (w + 128) as unsigned, minus 128 * sum(y) lane by lane.
      const __m256i dot = _mm256_dpbusd_epi32(LaneOffsets<128>(x, i),
                                              _mm256_xor_si256(ws, _mm256_set1_epi8(-128)), ys);
#else
      // |w| * (y with w's sign): fits maddubs since |w|, |y| <= 127.
      const __m256i dot =
          DotU8S8(_mm256_setzero_si256(), _mm256_sign_epi8(ws, ws), _mm256_sign_epi8(ys, ws));
#endif
      const float scale = HalfToFloat(blocks[i].d) * x.d[i];
      acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_set1_ps(scale), acc);
    };
    for (int64_t i = 0; i < nb; ++i) {
      if (i % 2 == 0) {
        Prefetch(reinterpret_cast<const uint8_t*>(blocks + i) + kPrefetchAhead);
        Prefetch(reinterpret_cast<const uint8_t*>(blocks + i) + kPrefetchAhead + 64);
      }
      one_block(i);
    }
    y[r] = HorizontalSum(acc);
  }
}

// ---- K types ----

// The 8 six-bit scales (bytes 0..7) and mins (bytes 8..15) of a Q4_K / Q5_K super-block.
inline __m128i UnpackScalesMins(const uint8_t* s) {
  uint32_t u0, u1, u2;
  std::memcpy(&u0, s, 4);
  std::memcpy(&u1, s + 4, 4);
  std::memcpy(&u2, s + 8, 4);
  const uint32_t sc_lo = u0 & 0x3f3f3f3f;
  const uint32_t mn_lo = u1 & 0x3f3f3f3f;
  const uint32_t sc_hi = (u2 & 0x0f0f0f0f) | ((u0 >> 2) & 0x30303030);
  const uint32_t mn_hi = ((u2 >> 4) & 0x0f0f0f0f) | ((u1 >> 2) & 0x30303030);
  return _mm_set_epi32(static_cast<int>(mn_hi), static_cast<int>(mn_lo), static_cast<int>(sc_hi),
                       static_cast<int>(sc_lo));
}

// Broadcast int16 element j of a 128-bit vector of 8 int16 to all 16 lanes.
template <int j>
inline __m256i BroadcastI16(__m256i v8x2) {
  return _mm256_shuffle_epi8(v8x2,
                             _mm256_set1_epi16(static_cast<short>((2 * j) | (2 * j + 1) << 8)));
}

template <bool kHasHigh>
void Q45KRows(const uint8_t* w, int64_t row_bytes, int64_t n_rows, const Activation& x, float* y) {
  using Block = std::conditional_t<kHasHigh, BlockQ5_K, BlockQ4_K>;
  const int64_t nb = x.n / 256;
  for (int64_t r = 0; r < n_rows; ++r) {
    const Block* blocks = reinterpret_cast<const Block*>(w + r * row_bytes);
    __m256 acc = _mm256_setzero_ps(), acc_min = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
      const Block& blk = blocks[b];
      const uint8_t* base = reinterpret_cast<const uint8_t*>(&blk);
      Prefetch(base + kPrefetchAhead);
      Prefetch(base + kPrefetchAhead + 64);
      Prefetch(base + kPrefetchAhead + 128);
      const __m128i sm = UnpackScalesMins(blk.scales);
      // Scales as int16, the same 8 in both 128-bit halves (for in-lane shuffles).
      const __m128i sc16 = _mm_cvtepu8_epi16(sm);
      const __m256i sc = _mm256_set_m128i(sc16, sc16);
      // Mins each twice, against the 16 bsums (2 per sub-block).
      const __m128i mn = _mm_unpackhi_epi8(sm, sm);
      const __m256i mins16 = _mm256_cvtepu8_epi16(mn);
      const __m256i bsums = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.bsums + 16 * b));
      const __m256i min_prod = _mm256_madd_epi16(mins16, bsums);
      const int8_t* xq = x.qs + 256 * b;
      __m256i isum = _mm256_setzero_si256();
      auto chunk = [&](int c, __m256i sc_lo, __m256i sc_hi) {
        const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk.qs + 32 * c));
        __m256i lo = _mm256_and_si256(q, _mm256_set1_epi8(0x0f));
        __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), _mm256_set1_epi8(0x0f));
        if constexpr (kHasHigh) {
          const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk.qh));
          const __m256i m_lo = _mm256_set1_epi8(static_cast<char>(1 << (2 * c)));
          const __m256i m_hi = _mm256_set1_epi8(static_cast<char>(2 << (2 * c)));
          const __m256i x10 = _mm256_set1_epi8(0x10);
          lo = _mm256_or_si256(
              lo, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, m_lo), m_lo), x10));
          hi = _mm256_or_si256(
              hi, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, m_hi), m_hi), x10));
        }
        const __m256i y_lo = _mm256_load_si256(reinterpret_cast<const __m256i*>(xq + 64 * c));
        const __m256i y_hi = _mm256_load_si256(reinterpret_cast<const __m256i*>(xq + 64 * c + 32));
        isum = DotI16(isum, _mm256_maddubs_epi16(lo, y_lo), sc_lo);
        isum = DotI16(isum, _mm256_maddubs_epi16(hi, y_hi), sc_hi);
      };
      chunk(0, BroadcastI16<0>(sc), BroadcastI16<1>(sc));
      chunk(1, BroadcastI16<2>(sc), BroadcastI16<3>(sc));
      chunk(2, BroadcastI16<4>(sc), BroadcastI16<5>(sc));
      chunk(3, BroadcastI16<6>(sc), BroadcastI16<7>(sc));
      const float dx = x.d[b];
      acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(dx * HalfToFloat(blk.d)), acc);
      acc_min = _mm256_fmadd_ps(_mm256_cvtepi32_ps(min_prod),
                                _mm256_set1_ps(dx * HalfToFloat(blk.dmin)), acc_min);
    }
    y[r] = HorizontalSum(_mm256_sub_ps(acc, acc_min));
  }
}

void Q6KRows(const uint8_t* w, int64_t row_bytes, int64_t n_rows, const Activation& x, float* y) {
  const int64_t nb = x.n / 256;
  for (int64_t r = 0; r < n_rows; ++r) {
    const BlockQ6_K* blocks = reinterpret_cast<const BlockQ6_K*>(w + r * row_bytes);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
      const BlockQ6_K& blk = blocks[b];
      const uint8_t* base = reinterpret_cast<const uint8_t*>(&blk);
      Prefetch(base + kPrefetchAhead);
      Prefetch(base + kPrefetchAhead + 64);
      Prefetch(base + kPrefetchAhead + 128);
      Prefetch(base + kPrefetchAhead + 192);
      // 16 scales as int16; the -32 offset: sum_i sc_i * 32 * bsum_i.
      const __m256i sc_all =
          _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk.scales)));
      const __m256i bsums = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.bsums + 16 * b));
      __m256i isum = _mm256_slli_epi32(_mm256_madd_epi16(sc_all, bsums), 5);
      isum = _mm256_sub_epi32(_mm256_setzero_si256(), isum);
      const int8_t* xq = x.qs + 256 * b;
      const __m256i m4 = _mm256_set1_epi8(0x0f), m3 = _mm256_set1_epi8(0x30);
      for (int h = 0; h < 2; ++h) {
        // Scales of this half (8 int16) in both 128-bit lanes.
        const __m128i sch =
            h == 0 ? _mm256_castsi256_si128(sc_all) : _mm256_extracti128_si256(sc_all, 1);
        const __m256i sc = _mm256_set_m128i(sch, sch);
        const __m256i ql0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk.ql + 64 * h));
        const __m256i ql1 =
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk.ql + 64 * h + 32));
        const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk.qh + 32 * h));
        const __m256i q1 = _mm256_or_si256(_mm256_and_si256(ql0, m4),
                                           _mm256_and_si256(_mm256_slli_epi16(qh, 4), m3));
        const __m256i q2 = _mm256_or_si256(_mm256_and_si256(ql1, m4),
                                           _mm256_and_si256(_mm256_slli_epi16(qh, 2), m3));
        const __m256i q3 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4),
                                           _mm256_and_si256(qh, m3));
        const __m256i q4 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
                                           _mm256_and_si256(_mm256_srli_epi16(qh, 2), m3));
        const int8_t* xh = xq + 128 * h;
        // Each 32 quants span two 16-element sub-blocks: scale pairs (0,1), (2,3), ...
        auto part = [&](__m256i q, int k, __m256i scales) {
          const __m256i ys = _mm256_load_si256(reinterpret_cast<const __m256i*>(xh + 32 * k));
          isum = DotI16(isum, _mm256_maddubs_epi16(q, ys), scales);
        };
        // Lanes 0..7 of the maddubs result are elements 0..15 (scale 2k), 8..15 the rest.
        auto pair = [&](int k) {
          const __m256i idx = _mm256_set_epi8(
              4 * k + 3, 4 * k + 2, 4 * k + 3, 4 * k + 2, 4 * k + 3, 4 * k + 2, 4 * k + 3,
              4 * k + 2, 4 * k + 3, 4 * k + 2, 4 * k + 3, 4 * k + 2, 4 * k + 3, 4 * k + 2,
              4 * k + 3, 4 * k + 2, 4 * k + 1, 4 * k, 4 * k + 1, 4 * k, 4 * k + 1, 4 * k, 4 * k + 1,
              4 * k, 4 * k + 1, 4 * k, 4 * k + 1, 4 * k, 4 * k + 1, 4 * k, 4 * k + 1, 4 * k);
          return _mm256_shuffle_epi8(sc, idx);
        };
        part(q1, 0, pair(0));
        part(q2, 1, pair(1));
        part(q3, 2, pair(2));
        part(q4, 3, pair(3));
      }
      acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(x.d[b] * HalfToFloat(blk.d)),
                            acc);
    }
    y[r] = HorizontalSum(acc);
  }
}

const KernelTable kTable = {
    .f32 = LlamaOrderRows<false>,
    .f16 = LlamaOrderRows<true>,
    .bf16 = FloatRows<2, LoadBf16x8>,
    .q4_0 = Q32Rows<Q4_0Decoder>,
    .q4_1 = Q32Rows<Q4_1Decoder>,
    .q5_0 = Q32Rows<Q5_0Decoder>,
    .q5_1 = Q32Rows<Q5_1Decoder>,
    .q8_0 = Q8_0Rows,
    .q4_k = Q45KRows<false>,
    .q5_k = Q45KRows<true>,
    .q6_k = Q6KRows,
    .q4_0_repacked = Q4_0RepackedRows,
};
