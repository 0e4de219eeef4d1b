// How a token is drawn from the logits: the parameters every part shares (the client,
// the coordinator, the wire and the last stage). The sampler itself is node/sampler.h.
#pragma once

#include <cstdint>

#include "absl/status/status.h"

namespace tandem {

using TokenId = int32_t;

struct SamplingParams {
  float temperature = 0.8f;     // <= 0: greedy (argmax, ties to the lowest id)
  int32_t top_k = 40;           // <= 0: off
  float top_p = 0.95f;          // >= 1: off
  float min_p = 0.05f;          // <= 0: off
  float repeat_penalty = 1.0f;  // 1: off
  int32_t repeat_last_n = 64;
  uint64_t seed = 0;
};

// The repetition penalty looks back at most this far: the recent tokens ride in every
// sampling frame, so their count is bounded like every other count on the wire.
inline constexpr int32_t kMaxRepeatLastN = 8192;

// A clear error naming the bad parameter.
absl::Status ValidateSamplingParams(const SamplingParams& params);

}  // namespace tandem
