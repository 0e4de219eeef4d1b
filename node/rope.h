// Rotary position embedding as llama.cpp applies it to GGUF llama weights ("normal"
// mode: rotate adjacent pairs (x[2i], x[2i+1]) of the first n_rot dimensions of each head).
#pragma once

#include <cstdint>
#include <vector>

namespace tandem {

class Rope {
 public:
  // freq_factors (n_rot / 2 values, or null) divide each pair's angle (Llama 3.1's
  // rope_freqs tensor).
  Rope(int64_t head_dim, int64_t n_rot, float freq_base, float freq_scale,
       const float* freq_factors);

  // Rotates n_heads heads of head_dim values, stored back to back, at `position`.
  void Apply(float* x, int64_t n_heads, int64_t position) const;

 private:
  int64_t head_dim_;
  int64_t n_rot_;
  float freq_scale_;
  std::vector<float> theta_;  // per pair: base^(-2i/n_rot) / factor
};

}  // namespace tandem
