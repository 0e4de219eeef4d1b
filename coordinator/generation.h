// The generation loop shared by the single-process engine and the distributed
// coordinator: prefill the prompt, then decode one token at a time, keeping the token
// history. Where the layers run is the Stepper's business.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "node/sampler.h"

namespace tandem {

using TokenId = int32_t;

class Stepper {
 public:
  virtual ~Stepper() = default;
  // Feeds `tokens` at positions [position, position + tokens.size()) through every layer
  // and samples the token that follows the last of them. `history` is every token of the
  // session so far, `tokens` included (for the repetition penalty).
  virtual absl::StatusOr<TokenId> Step(absl::Span<const TokenId> tokens, int64_t position,
                                       const SamplingParams& sampling,
                                       absl::Span<const TokenId> history) = 0;
};

struct GenerationRequest {
  std::vector<TokenId> prompt_ids;
  int32_t n_predict = 32;
  SamplingParams sampling;
  bool stop_at_eos = false;
  int64_t n_ctx = 0;  // prompt + generated tokens must fit
};

struct GenerationResult {
  std::vector<TokenId> ids;  // generated
  double prompt_seconds = 0;  // prefill, up to the first generated token
  double decode_seconds = 0;  // the rest
  int64_t n_prompt = 0;
  int64_t n_decode_steps = 0;
  double prompt_tokens_per_s() const;
  double generated_tokens_per_s() const;
};

// Calls on_token for each generated token as it arrives; on_token returning false stops.
// is_eog tells end-of-generation tokens (used when stop_at_eos).
absl::StatusOr<GenerationResult> RunGeneration(Stepper& stepper, const GenerationRequest& request,
                                               const std::function<bool(TokenId)>& is_eog,
                                               const std::function<bool(TokenId)>& on_token);

}  // namespace tandem
