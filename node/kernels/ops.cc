#include "node/kernels/ops.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "base/fp16.h"
#include "node/kernels/vec_dot.h"

namespace tandem {
namespace {

// Each function is compiled for AVX-512, AVX2 and baseline x86-64; the loader picks one.
#define TANDEM_VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v4", "avx2,fma", "default")))

constexpr int kLanes = 16;  // independent partial sums: vectorizes without reassociation

// exp(x) computed as llama.cpp's CPU softmax and SiLU compute it on AVX-512 (ggml's vector
// expf, after Arm's optimized routines): n = round(x log2 e) by the 1.5 * 2^23 shifter,
// r = x - n ln2 in two fused steps (hi 0x1.62e4p-1, lo 0x1.7f7d1cp-20), a degree-5
// polynomial in r evaluated as ((c5 r + c4) r^2 + (c3 r + c2)) r^2 + (c1 r + 1), all
// fused, scaled by 2^n. Results that would be subnormal (x < about -87.3) are 0 here (ggml
// keeps them; they are below anything they are added to) and exp(-inf) = 0.
inline float ExpGgml(float x) {
  constexpr float kShifter = 0x1.8p23f;
  const float z = std::fma(x, 0x1.715476p+0f, kShifter);
  const float n = z - kShifter;
  const float r = std::fma(-n, 0x1.7f7d1cp-20f, std::fma(-n, 0x1.62e4p-1f, x));
  const float r2 = r * r;
  const float odd_even = std::fma(std::fma(0x1.0e4020p-7f, r, 0x1.573e2ep-5f), r2,
                                  std::fma(0x1.555e66p-3f, r, 0x1.fffdb6p-2f));
  const float p = std::fma(odd_even, r2, std::fma(0x1.ffffecp-1f, r, 1.0f));
  if (!(n >= -126.0f && n <= 127.0f)) return n > 0 ? INFINITY : 0.0f;
  const float scale = __builtin_bit_cast(float, (static_cast<int>(n) + 127) << 23);
  return p * scale;
}

// _mm512_reduce_add_ps's order for 16 values: l += l + 8, then + 4, + 2, + 1.
inline float TreeSum16(float* v) {
  for (int half = 8; half >= 1; half /= 2) {
    for (int l = 0; l < half; ++l) v[l] += v[l + half];
  }
  return v[0];
}

// As llama.cpp's soft_max on AVX-512: ggml's expf over 16 scores at a time (the masked
// ones past n are exactly 0), each 16 summed as a tree into a double.
TANDEM_VECTOR_CLONES double ExpGgmlMinusAndSum(float* x, int64_t n, float max) {
  double sum = 0;
  for (int64_t i = 0; i < n; i += 16) {
    float e[16];
    for (int l = 0; l < 16; ++l) e[l] = i + l < n ? ExpGgml(x[i + l] - max) : 0.0f;
    for (int l = 0; l < 16 && i + l < n; ++l) x[i + l] = e[l];
    sum += TreeSum16(e);
  }
  return sum;
}

// Sum of the f32 squares in double, in order, as llama.cpp's rms_norm: its scale then
// rounds the same way, so the normalised activations (which are quantized next) agree
// to the bit.
double SumSquares(const float* x, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += static_cast<double>(x[i] * x[i]);
  return s;
}

TANDEM_VECTOR_CLONES void Scale2(const float* x, const float* w, float scale, int64_t n,
                                 float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] * scale * w[i];
}

TANDEM_VECTOR_CLONES float Max(const float* x, int64_t n) {
  float acc[kLanes];
  for (int l = 0; l < kLanes; ++l) acc[l] = -INFINITY;
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int l = 0; l < kLanes; ++l) acc[l] = acc[l] > x[i + l] ? acc[l] : x[i + l];
  }
  float m = -INFINITY;
  for (; i < n; ++i) m = m > x[i] ? m : x[i];
  for (int l = 0; l < kLanes; ++l) m = m > acc[l] ? m : acc[l];
  return m;
}

TANDEM_VECTOR_CLONES void ScaleInPlace(float* x, int64_t n, float s) {
  for (int64_t i = 0; i < n; ++i) x[i] *= s;
}

// As llama.cpp's silu row by row, then times up: ggml's vector exp over whole steps of 16,
// the C library's expf for the rest of the row.
TANDEM_VECTOR_CLONES void SwiGluImpl(const float* gate, const float* up, int64_t n, float* out) {
  const int64_t n_steps = n / 16 * 16;
  for (int64_t i = 0; i < n_steps; ++i) {
    const float g = gate[i];
    out[i] = g / (1.0f + ExpGgml(-g)) * up[i];
  }
  for (int64_t i = n_steps; i < n; ++i) {
    const float g = gate[i];
    out[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

// llama.cpp's scalar loops multiply and add with two roundings (never contracted into a
// fused multiply-add); so do the functions marked so.
#define TANDEM_NO_CONTRACTION __attribute__((optimize("fp-contract=off")))

// llama.cpp's ggml_vec_dot_f32 on AVX-512: 64 lanes (4 vectors of 16) take fused
// multiply-adds over whole steps of 64, the vectors are added 0 += 2, 1 += 3, 0 += 1, the 16
// lanes as a tree, then the leftovers one element at a time (kernels::F32Leftovers).
TANDEM_VECTOR_CLONES float DotImpl(const float* a, const float* b, int64_t n) {
  const int64_t n_steps = n / 64 * 64;
  float s = 0;
  if (n_steps > 0) {
    float acc[64] = {};
    for (int64_t i = 0; i < n_steps; i += 64) {
      for (int l = 0; l < 64; ++l) acc[l] = std::fma(a[i + l], b[i + l], acc[l]);
    }
    for (int l = 0; l < 32; ++l) acc[l] += acc[l + 32];
    for (int l = 0; l < 16; ++l) acc[l] += acc[l + 16];
    s = TreeSum16(acc);
  }
  return n_steps == n ? s : kernels::F32Leftovers(a, b, n_steps, n, s);  // head_dim % 64 != 0
}

// WeightedSum with position j's terms in lane j % kLaneCount, vectorized over the dims:
// lanes[l * dims + d] += p[j] * v[j][d] (fused), for j < n.
// (Not a template: clang cannot multiversion function templates.)
TANDEM_VECTOR_CLONES void LaneWeightedSums(int64_t kLaneCount, const float* p, const float* v,
                                           int64_t v_stride, int64_t n, int64_t dims,
                                           float* lanes) {
  for (int64_t j = 0; j < n; ++j) {
    float* lane = lanes + (j % kLaneCount) * dims;
    const float* vj = v + j * v_stride;
    const float pj = p[j];
    for (int64_t d = 0; d < dims; ++d) lane[d] = std::fma(vj[d], pj, lane[d]);
  }
}

// lanes (16, dims) -> lanes[0 .. dims): the 16-lane tree per dim.
void TreeSum16Rows(float* lanes, int64_t dims) {
  for (int half = 8; half >= 1; half /= 2) {
    for (int l = 0; l < half; ++l) {
      for (int64_t d = 0; d < dims; ++d) lanes[l * dims + d] += lanes[(l + half) * dims + d];
    }
  }
}

TANDEM_NO_CONTRACTION TANDEM_VECTOR_CLONES void AxpyImpl(float a, const float* x, float* y,
                                                         int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

// The tanh GELU of one fp16 value, rounded to fp16, as ggml's CPU backend fills its
// table_gelu_f16: its build (-march=native, GCC's default contraction) fuses
// 1 + 0.044715 x x into fma(0.044715 x, x, 1) and nothing else. (One entry of the table,
// x = -1.99902, differs from the unfused form; gemma2-synth-f32 reaches it.)
TANDEM_NO_CONTRACTION uint16_t GeluFp16(uint16_t h) {
  const float kSqrt2OverPi = 0.79788456080286535587989211986876f;
  const float kCoefA = 0.044715f;
  const float x = Fp16ToFp32(h);
  const float inner = std::fma(kCoefA * x, x, 1.0f);
  return Fp32ToFp16(0.5f * x * (1.0f + std::tanh(kSqrt2OverPi * x * inner)));
}

// ggml's table_gelu_f16: GeluFp16 of every fp16 value.
const std::vector<uint16_t>& GeluTable() {
  static const std::vector<uint16_t> table = [] {
    std::vector<uint16_t> t(1 << 16);
    for (uint32_t i = 0; i < t.size(); ++i) t[i] = GeluFp16(static_cast<uint16_t>(i));
    return t;
  }();
  return table;
}

}  // namespace

void RmsNorm(const float* x, const float* weight, int64_t n, float eps, float* out) {
  const float mean = static_cast<float>(SumSquares(x, n) / static_cast<double>(n));
  Scale2(x, weight, 1.0f / std::sqrt(mean + eps), n, out);
}

void Softmax(float* x, int64_t n) {
  const float max = Max(x, n);
  const double sum = ExpGgmlMinusAndSum(x, n, max);
  ScaleInPlace(x, n, static_cast<float>(1.0 / sum));  // llama.cpp: 1 / sum in double
}

void SwiGlu(const float* gate, const float* up, int64_t n, float* out) {
  SwiGluImpl(gate, up, n, out);
}

void GeluTanhGlu(const float* gate, const float* up, int64_t n, float* out) {
  const std::vector<uint16_t>& table = GeluTable();
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    float gelu;
    if (g <= -10.0f) {
      gelu = 0.0f;
    } else if (g >= 10.0f) {
      gelu = g;
    } else {
      gelu = Fp16ToFp32(table[Fp32ToFp16(g)]);
    }
    out[i] = gelu * up[i];
  }
}

void SoftCap(float* x, int64_t n, float cap) {
  const float inverse = 1.0f / cap;
  for (int64_t i = 0; i < n; ++i) x[i] = cap * std::tanh(x[i] * inverse);
}

float Dot(const float* a, const float* b, int64_t n) { return DotImpl(a, b, n); }

void WeightedSum(const float* p, const float* v, int64_t v_stride, int64_t n, int64_t dims,
                 bool batched, float* out) {
  static thread_local std::vector<float> lanes;
  if (batched) {
    // Several tokens (a prompt): llama.cpp's tinyBLAS (its sgemm runs every product of two
    // or more tokens whose length is a multiple of 16, as the positions padded to 32 are):
    // position j's term fused into lane j % 16, the 16 lanes added as a tree.
    lanes.assign(16 * dims, 0.0f);
    LaneWeightedSums(16, p, v, v_stride, n, dims, lanes.data());
    TreeSum16Rows(lanes.data(), dims);
    std::copy_n(lanes.data(), dims, out);
    return;
  }
  // ggml_vec_dot_f32 over the positions padded to 32 (the padding adds exact zeros): whole
  // steps of 64 in 64 lanes, the 4 vectors of 16 added 0 += 2, 1 += 3, 0 += 1, the tree,
  // then the rest of the padded length one position at a time.
  const int64_t n_padded = (n + 31) / 32 * 32, n_steps = std::min(n, n_padded / 64 * 64);
  std::fill_n(out, dims, 0.0f);
  if (n_padded >= 64) {
    lanes.assign(64 * dims, 0.0f);
    LaneWeightedSums(64, p, v, v_stride, n_steps, dims, lanes.data());
    for (int64_t k = 0; k < 32 * dims; ++k) lanes[k] += lanes[k + 32 * dims];
    for (int64_t k = 0; k < 16 * dims; ++k) lanes[k] += lanes[k + 16 * dims];
    TreeSum16Rows(lanes.data(), dims);
    std::copy_n(lanes.data(), dims, out);
  }
  for (int64_t j = n_steps; j < n; ++j) Axpy(p[j], v + j * v_stride, out, dims);
}

void Axpy(float a, const float* x, float* y, int64_t n) { AxpyImpl(a, x, y, n); }

}  // namespace tandem
