// Turns the logits of one position into a token: greedy, or repetition penalty →
// top-k → top-p → min-p → temperature → a draw from the counter-based generator.
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "absl/types/span.h"

namespace tandem {

struct SamplingParams {
  float temperature = 0.8f;  // <= 0: greedy (argmax, ties to the lowest id)
  int32_t top_k = 40;        // <= 0: off
  float top_p = 0.95f;       // >= 1: off
  float min_p = 0.05f;       // <= 0: off
  float repeat_penalty = 1.0f;  // 1: off
  int32_t repeat_last_n = 64;
  uint64_t seed = 0;
};

// A clear error naming the bad parameter.
absl::Status ValidateSamplingParams(const SamplingParams& params);

// `recent` holds the session's last tokens (for the repetition penalty); `position` is the
// position the sampled token will take, keying the random draw.
int32_t SampleToken(absl::Span<const float> logits, const SamplingParams& params,
                    absl::Span<const int32_t> recent, int64_t position);

// Index of the largest value, ties to the lowest index.
int32_t Argmax(absl::Span<const float> logits);

}  // namespace tandem
