// Turns the logits of one position into a token: greedy, or repetition penalty →
// top-k → top-p → min-p → temperature → a draw from the counter-based generator.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "base/sampling.h"

namespace tandem {

// `recent` holds the session's last tokens (for the repetition penalty); `position` is the
// position the sampled token will take, keying the random draw.
int32_t SampleToken(absl::Span<const float> logits, const SamplingParams& params,
                    absl::Span<const int32_t> recent, int64_t position);

// The penalties of `params` applied to `logits` in place: the repetition penalty as
// llama.cpp applies it (divide positive logits, multiply negative), then presence and
// frequency penalties, over the last repeat_last_n tokens of `recent`.
void ApplyPenalties(std::vector<float>& logits, const SamplingParams& params,
                    absl::Span<const int32_t> recent);

// The log-probability of `token` under softmax(logits), and the `n_top` most likely tokens
// (ties to the lower id), best first.
struct SampledLogprobs {
  float logprob = 0;
  std::vector<TokenLogprob> top;
};
SampledLogprobs Logprobs(absl::Span<const float> logits, int32_t token, int n_top);

// Index of the largest value, ties to the lowest index.
int32_t Argmax(absl::Span<const float> logits);

}  // namespace tandem
