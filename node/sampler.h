// Turns the logits of one position into a token: greedy, or repetition penalty →
// top-k → top-p → min-p → temperature → a draw from the counter-based generator.
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "base/sampling.h"

namespace tandem {

// `recent` holds the session's last tokens (for the repetition penalty); `position` is the
// position the sampled token will take, keying the random draw.
int32_t SampleToken(absl::Span<const float> logits, const SamplingParams& params,
                    absl::Span<const int32_t> recent, int64_t position);

// Index of the largest value, ties to the lowest index.
int32_t Argmax(absl::Span<const float> logits);

}  // namespace tandem
