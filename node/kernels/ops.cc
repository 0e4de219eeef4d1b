#include "node/kernels/ops.h"

#include <cmath>

namespace tandem {
namespace {

// Each function is compiled for AVX-512, AVX2 and baseline x86-64; the loader picks one.
#define TANDEM_VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v4", "avx2,fma", "default")))

constexpr int kLanes = 16;  // independent partial sums: vectorizes without reassociation

// exp(x) for x <= 0 (and modest positive x): 2^k * p(r), |rel err| < 2e-7. Written with
// plain arithmetic so the loops using it vectorize.
inline float ExpApprox(float x_in) {
  // Written so that NaN (activations come off the wire) clamps too: casting NaN to int
  // below would be undefined.
  const float x = x_in > -87.0f ? (x_in < 88.0f ? x_in : 88.0f) : -87.0f;
  const float kLog2e = 1.44269504088896341f;
  const float k = std::nearbyint(x * kLog2e);
  const float r = x - k * 0.693145751953125f - k * 1.428606765330187045e-06f;
  // Taylor/minimax polynomial of exp(r) on |r| <= ln2/2.
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int ki = static_cast<int>(k);
  const float scale = __builtin_bit_cast(float, (ki + 127) << 23);
  return x_in < -87.0f ? 0.0f : p * scale;  // exp(-inf) = 0 for masked scores
}

TANDEM_VECTOR_CLONES float SumSquares(const float* x, int64_t n) {
  float acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int l = 0; l < kLanes; ++l) acc[l] += x[i + l] * x[i + l];
  }
  float s = 0;
  for (; i < n; ++i) s += x[i] * x[i];
  for (int l = 0; l < kLanes; ++l) s += acc[l];
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

TANDEM_VECTOR_CLONES float ExpMinusAndSum(float* x, int64_t n, float max) {
  float acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int l = 0; l < kLanes; ++l) {
      x[i + l] = ExpApprox(x[i + l] - max);
      acc[l] += x[i + l];
    }
  }
  float s = 0;
  for (; i < n; ++i) {
    x[i] = ExpApprox(x[i] - max);
    s += x[i];
  }
  for (int l = 0; l < kLanes; ++l) s += acc[l];
  return s;
}

TANDEM_VECTOR_CLONES void ScaleInPlace(float* x, int64_t n, float s) {
  for (int64_t i = 0; i < n; ++i) x[i] *= s;
}

TANDEM_VECTOR_CLONES void SwiGluImpl(const float* gate, const float* up, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    out[i] = g / (1.0f + ExpApprox(-g)) * up[i];
  }
}

TANDEM_VECTOR_CLONES float DotImpl(const float* a, const float* b, int64_t n) {
  float acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int l = 0; l < kLanes; ++l) acc[l] += a[i + l] * b[i + l];
  }
  float s = 0;
  for (; i < n; ++i) s += a[i] * b[i];
  for (int l = 0; l < kLanes; ++l) s += acc[l];
  return s;
}

TANDEM_VECTOR_CLONES void AxpyImpl(float a, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

}  // namespace

void RmsNorm(const float* x, const float* weight, int64_t n, float eps, float* out) {
  const float mean = SumSquares(x, n) / static_cast<float>(n);
  Scale2(x, weight, 1.0f / std::sqrt(mean + eps), n, out);
}

void Softmax(float* x, int64_t n) {
  const float max = Max(x, n);
  const float sum = ExpMinusAndSum(x, n, max);
  ScaleInPlace(x, n, 1.0f / sum);
}

void SwiGlu(const float* gate, const float* up, int64_t n, float* out) {
  SwiGluImpl(gate, up, n, out);
}

float Dot(const float* a, const float* b, int64_t n) { return DotImpl(a, b, n); }

void Axpy(float a, const float* x, float* y, int64_t n) { AxpyImpl(a, x, y, n); }

}  // namespace tandem
