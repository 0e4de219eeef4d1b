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
  // OpenAI's penalties over the last repeat_last_n tokens: a token's logit drops by
  // presence_penalty once it appeared and by frequency_penalty per appearance (0: off).
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  bool logprobs = false;     // report the sampled token's log-probability...
  int32_t top_logprobs = 0;  // ...and this many most likely alternatives
};

// The repetition penalty looks back at most this far: the recent tokens ride in every
// sampling frame, so their count is bounded like every other count on the wire.
inline constexpr int32_t kMaxRepeatLastN = 8192;

inline constexpr int32_t kMaxTopLogprobs = 20;

// A token and its log-probability under the model.
struct TokenLogprob {
  TokenId token = 0;
  float logprob = 0;
};

// Whether sampling looks at the session's recent tokens (a penalty is on).
inline bool UsesRecentTokens(const SamplingParams& p) {
  return p.repeat_penalty != 1.0f || p.presence_penalty != 0.0f || p.frequency_penalty != 0.0f;
}

// A clear error naming the bad parameter.
absl::Status ValidateSamplingParams(const SamplingParams& params);

}  // namespace tandem
