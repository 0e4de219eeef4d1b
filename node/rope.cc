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
  // llama.cpp's arithmetic (ggml_rope_cache_init and rope_f32 as its x86 build compiles
  // them): theta starts at the position and is multiplied by theta_scale once per pair, the
  // angle is freq_scale * (theta / factor), and the rotation's products are contracted as
  // GCC contracts `x0*c - x1*s` and `x0*s + x1*c`: the first product fused with the other,
  // rounded one. Together with the prompt attention's order (ops.cc) this reproduces
  // llama.cpp's f32 logits bit for bit on llama3-, qwen2- and phi3-synth (A1, A2 and the
  // 73-token A4); each part alone does not.
  float theta = static_cast<float>(position);
  for (int64_t i = 0; i < half; ++i) {
    const float angle = freq_scale_ * (theta / freq_factors_[i]);
    theta *= theta_scale_;
    const float c = std::cos(angle), s = std::sin(angle);
    for (int64_t h = 0; h < n_heads; ++h) {
      float* v = x + h * head_dim_ + i * stride;
      const float x0 = v[0], x1 = v[other];
      const float x1s = x1 * s, x1c = x1 * c;
      v[0] = std::fma(x0, c, -x1s);
      v[other] = std::fma(x0, s, x1c);
    }
  }
}

}  // namespace tandem
