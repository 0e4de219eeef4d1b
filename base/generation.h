// One generation request, the checks it passes before any work (in-process or on a
// cluster alike), and its progress: the token history and when it is done.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/status.h"
#include "base/sampling.h"

namespace tandem {

struct GenerationRequest {
  std::vector<TokenId> prompt_ids;
  int32_t n_predict = 32;
  SamplingParams sampling;
  bool stop_at_eos = false;
  // More tokens that end generation when sampled (a chat template's end-of-turn tokens).
  std::vector<TokenId> stop_ids;
};

// The longest context a session may have, wherever it is chosen (-c, a GGUF's
// context_length, a Configure off the wire): far above today's models' 128K, low enough
// that every size computed from it (KV cache, attention scores) is checked arithmetic on
// modest numbers.
inline constexpr int64_t kMaxContextLength = int64_t{1} << 20;

// n_ctx in [1, kMaxContextLength]; the error names `what` (e.g. "-c", "context length").
absl::Status ValidateContextLength(int64_t n_ctx, const char* what = "context length");

// The prompt is not empty, n_predict is not negative, the sampling parameters are sane,
// every prompt id is in the vocabulary and prompt + generated tokens fit n_ctx.
absl::Status ValidateGenerationRequest(const GenerationRequest& request, int64_t n_ctx,
                                       int64_t n_vocab);

// A request's token history (the source of truth: a stage that loses its KV cache is
// rebuilt from it) and its stopping rule.
class GenerationState {
 public:
  explicit GenerationState(GenerationRequest request);

  const GenerationRequest& request() const { return request_; }
  const SamplingParams& sampling() const { return request_.sampling; }
  const std::vector<TokenId>& history() const { return history_; }
  int64_t n_prompt() const { return static_cast<int64_t>(request_.prompt_ids.size()); }
  int64_t n_generated() const { return static_cast<int64_t>(history_.size()) - n_prompt(); }
  // The position the next sampled token takes.
  int64_t next_position() const { return static_cast<int64_t>(history_.size()); }
  bool done() const { return done_; }
  // Done because a stop token (end of generation or a stop id) was sampled, not because
  // n_predict tokens were generated.
  bool stopped_by_token() const { return stopped_by_token_; }

  // Records the token sampled for `position`. False, changing nothing, when the position
  // is not the next one (a duplicate or a stale result) or the request is done.
  bool Accept(TokenId token, int64_t position, bool is_end_of_generation);

 private:
  GenerationRequest request_;
  std::vector<TokenId> history_;
  bool done_ = false;
  bool stopped_by_token_ = false;
};

struct GenerationResult {
  std::vector<TokenId> ids;   // generated
  double prompt_seconds = 0;  // prefill, up to the first generated token
  double decode_seconds = 0;  // the rest
  int64_t n_prompt = 0;
  int64_t n_decode_steps = 0;
  double prompt_tokens_per_s() const;
  double generated_tokens_per_s() const;
};

}  // namespace tandem
