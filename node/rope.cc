#include "node/rope.h"

#include <cmath>

namespace tandem {

Rope::Rope(RopeStyle style, int64_t head_dim, int64_t n_rot, float freq_base, float freq_scale,
           const float* freq_factors)
    : style_(style),
      head_dim_(head_dim),
      n_rot_(n_rot),
      freq_scale_(freq_scale),
      theta_scale_(std::pow(freq_base, -2.0f / static_cast<float>(n_rot))),
      freq_factors_(freq_factors ? std::vector<float>(freq_factors, freq_factors + n_rot / 2)
                                 : std::vector<float>(n_rot / 2, 1.0f)) {}

void Rope::Apply(float* x, int64_t n_heads, int64_t position) const {
  const int64_t half = n_rot_ / 2;
  // Pair i's two elements: (2i, 2i + 1) in normal mode, (i, i + half) in NEOX mode.
  const int64_t stride = style_ == RopeStyle::kNeox ? 1 : 2;
  const int64_t other = style_ == RopeStyle::kNeox ? half : 1;
  // Angles as position * freq_scale times successive float powers of theta_scale (then
  // / factor): measured against llama.cpp's references this agrees with its logits more
  // often than ggml's own order (theta starting at the position), which made a q8_0
  // llama3 prompt part from llama.cpp at a margin of 0.04.
  const float p = static_cast<float>(position) * freq_scale_;
  float power = 1.0f;
  for (int64_t i = 0; i < half; ++i) {
    const float angle = p * (power / freq_factors_[i]);
    power *= theta_scale_;
    const float c = std::cos(angle), s = std::sin(angle);
    for (int64_t h = 0; h < n_heads; ++h) {
      float* v = x + h * head_dim_ + i * stride;
      const float x0 = v[0], x1 = v[other];
      v[0] = x0 * c - x1 * s;
      v[other] = x0 * s + x1 * c;
    }
  }
}

}  // namespace tandem
