#include "node/rope.h"

#include <cmath>

namespace tandem {

Rope::Rope(int64_t head_dim, int64_t n_rot, float freq_base, float freq_scale,
           const float* freq_factors)
    : head_dim_(head_dim), n_rot_(n_rot), freq_scale_(freq_scale) {
  // Successive powers by repeated multiplication in float, as ggml computes them, so the
  // angles agree with llama.cpp to the last bit or two.
  const float theta_scale = std::pow(freq_base, -2.0f / static_cast<float>(n_rot));
  float theta = 1.0f;
  for (int64_t i = 0; i < n_rot / 2; ++i) {
    theta_.push_back(freq_factors ? theta / freq_factors[i] : theta);
    theta *= theta_scale;
  }
}

void Rope::Apply(float* x, int64_t n_heads, int64_t position) const {
  const float p = static_cast<float>(position) * freq_scale_;
  for (int64_t i = 0; i < n_rot_ / 2; ++i) {
    const float angle = p * theta_[i];
    const float c = std::cos(angle), s = std::sin(angle);
    for (int64_t h = 0; h < n_heads; ++h) {
      float* v = x + h * head_dim_ + 2 * i;
      const float x0 = v[0], x1 = v[1];
      v[0] = x0 * c - x1 * s;
      v[1] = x0 * s + x1 * c;
    }
  }
}

}  // namespace tandem
