// GGUF quantized block layouts (byte-exact with ggml) and their scalar reference
// dequantizers and round-to-nearest quantizers. The SIMD kernels are tested against these.
#pragma once

#include <cstdint>
#include <vector>

#include "model/ggml_type.h"

namespace tandem {

inline constexpr int64_t kQk = 32;    // elements per block of the 32-element types
inline constexpr int64_t kQkK = 256;  // elements per K-quant super-block

// Each element is (q - 8) * d; element j < 16 is the low nibble of qs[j], element j + 16
// its high nibble.
struct BlockQ4_0 {
  uint16_t d;  // f16
  uint8_t qs[16];
};
// Element is q * d + m, nibbles as Q4_0.
struct BlockQ4_1 {
  uint16_t d;  // f16
  uint16_t m;  // f16
  uint8_t qs[16];
};
// 5-bit: low 4 bits as Q4_0, bit 4 of element j is bit j of qh (little endian u32).
// Element is (q - 16) * d.
struct BlockQ5_0 {
  uint16_t d;
  uint8_t qh[4];
  uint8_t qs[16];
};
// Element is q * d + m, bits as Q5_0.
struct BlockQ5_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qh[4];
  uint8_t qs[16];
};
struct BlockQ8_0 {
  uint16_t d;
  int8_t qs[32];
};
// 256 elements in 8 sub-blocks of 32, each with a 6-bit scale and min packed in `scales`.
// Element = d * sc_j * q - dmin * m_j. 64-element chunk c uses qs[32c .. 32c+31]: low
// nibbles are sub-block 2c, high nibbles sub-block 2c + 1.
struct BlockQ4_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qs[128];
};
// As Q4_K, plus bit 4 of each quant: element l (+32) of chunk c takes bit 2c (2c+1) of qh[l].
struct BlockQ5_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qh[32];
  uint8_t qs[128];
};
// 256 elements in 16 sub-blocks of 16, element = d * scales[i] * (q - 32), q 6 bits: low 4
// in ql, high 2 in qh (layout in quants.cc).
struct BlockQ6_K {
  uint8_t ql[128];
  uint8_t qh[64];
  int8_t scales[16];
  uint16_t d;
};
static_assert(sizeof(BlockQ4_0) == 18 && sizeof(BlockQ4_1) == 20 && sizeof(BlockQ5_0) == 22 &&
              sizeof(BlockQ5_1) == 24 && sizeof(BlockQ8_0) == 34);
static_assert(sizeof(BlockQ4_K) == 144 && sizeof(BlockQ5_K) == 176 && sizeof(BlockQ6_K) == 210);

// Unpacks sub-block j's (0..7) 6-bit scale and min of a Q4_K / Q5_K super-block.
inline void UnpackScaleMinK4(const uint8_t* s, int j, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = s[j] & 63;
    *m = s[j + 4] & 63;
  } else {
    *sc = (s[j + 4] & 0xf) | ((s[j - 4] >> 6) << 4);
    *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

// The weight types this module dequantizes and quantizes: F32, F16, BF16, Q8_0, Q4_0,
// Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K.
bool IsSupportedWeightType(GgmlType type);

// Converts n elements (a multiple of the block size) of `type` at `src` to f32.
void DequantizeRowReference(GgmlType type, const uint8_t* src, int64_t n, float* out);

// Quantizes n elements (a multiple of the block size) to `type`, RowBytes(type, n) bytes at
// `dst`. Round-to-nearest like ggml's reference quantizers (for K types, a plain min/max
// scale per sub-block with 6- or 8-bit scale quantization, no iterative search).
void QuantizeRowReference(GgmlType type, const float* src, int64_t n, uint8_t* dst);

// A whole (rows, cols) matrix, rows back to back.
std::vector<uint8_t> QuantizeMatrix(GgmlType type, const float* src, int64_t rows, int64_t cols);

}  // namespace tandem
