// Rotary position embedding as llama.cpp applies it to GGUF weights: "normal" mode rotates
// adjacent pairs (x[2i], x[2i+1]) of the first n_rot dimensions of each head, NEOX mode
// the halves (x[i], x[i + n_rot/2]).
#pragma once

#include <cstdint>
#include <vector>

#include "node/arch/arch.h"

namespace tandem {

class Rope {
 public:
  // freq_factors (n_rot / 2 values, or null) divide each pair's angle (Llama 3.1's
  // rope_freqs tensor).
  Rope(RopeStyle style, int64_t head_dim, int64_t n_rot, float freq_base, float freq_scale,
       const float* freq_factors);

  // Rotates n_heads heads of head_dim values, stored back to back, at `position`.
  void Apply(float* x, int64_t n_heads, int64_t position) const;

 private:
  RopeStyle style_;
  int64_t head_dim_;
  int64_t n_rot_;
  float freq_scale_;
  float theta_scale_;                // base^(-2/n_rot)
  std::vector<float> freq_factors_;  // per pair, 1 when the file has none
};

}  // namespace tandem
