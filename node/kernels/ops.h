// Vector helpers of the forward pass. Each is scalar-correct and vectorized for the CPU it
// runs on (chosen at run time).
#pragma once

#include <cstdint>

namespace tandem {

// out[i] = x[i] / sqrt(mean(x^2) + eps) * weight[i]. `out` may alias `x`.
void RmsNorm(const float* x, const float* weight, int64_t n, float eps, float* out);

// In place: x[i] = exp(x[i] - max) / sum. n >= 1. In llama.cpp's arithmetic (ggml's vector
// expf, sums of 16 in double, 1 / sum from double), for a prompt's rows as for one token.
void Softmax(float* x, int64_t n);

// out[i] = silu(gate[i]) * up[i], silu(g) = g / (1 + exp(-g)). `out` may alias either input.
// One row of n as llama.cpp computes it (the exp differs for the last n % 16 elements).
void SwiGlu(const float* gate, const float* up, int64_t n, float* out);

// out[i] = gelu(gate[i]) * up[i] with the tanh GELU, 0.5 g (1 + tanh(sqrt(2/pi) (g + 0.044715
// g^3))), evaluated as ggml's CPU backend does: g rounded to fp16 and looked up in a table of
// fp16-rounded results; g <= -10 gives 0 and g >= 10 gives g. `out` may alias either input.
void GeluTanhGlu(const float* gate, const float* up, int64_t n, float* out);

// In place: x[i] = cap * tanh(x[i] * (1 / cap)) (Gemma 2's soft-capping).
void SoftCap(float* x, int64_t n, float cap);

// sum_i a[i] * b[i], in llama.cpp's order (ggml_vec_dot_f32 on AVX-512).
float Dot(const float* a, const float* b, int64_t n);

// y[i] += a * x[i] (a product, then a sum: not fused).
void Axpy(float a, const float* x, float* y, int64_t n);

// out[d] = sum_{j < n} p[j] * v[j * v_stride + d] for d < dims: attention's weighted sum of
// values, its float terms added in llama.cpp's order for an F32 KV cache: for one token its
// ggml_vec_dot_f32 over the positions padded to 32, for a prompt's tokens (`batched`) its
// tinyBLAS sgemm (16 lanes over the positions).
void WeightedSum(const float* p, const float* v, int64_t v_stride, int64_t n, int64_t dims,
                 bool batched, float* out);

}  // namespace tandem
