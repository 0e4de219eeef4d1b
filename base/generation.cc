#include "base/generation.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace tandem {

absl::Status ValidateContextLength(int64_t n_ctx, const char* what) {
  if (n_ctx <= 0 || n_ctx > kMaxContextLength) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " ", n_ctx, " is outside [1, ", kMaxContextLength, "] tokens"));
  }
  return absl::OkStatus();
}

absl::Status ValidateGenerationRequest(const GenerationRequest& r, int64_t n_ctx, int64_t n_vocab) {
  if (r.prompt_ids.empty()) return absl::InvalidArgumentError("the prompt has no tokens");
  if (r.n_predict < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("the number of tokens to generate is negative (", r.n_predict, ")"));
  }
  if (absl::Status s = ValidateSamplingParams(r.sampling); !s.ok()) return s;
  for (TokenId t : r.prompt_ids) {
    if (t < 0 || t >= n_vocab) {
      return absl::InvalidArgumentError(
          absl::StrCat("prompt token id ", t, " is outside the vocabulary of ", n_vocab));
    }
  }
  const int64_t needed = static_cast<int64_t>(r.prompt_ids.size()) + r.n_predict;
  if (needed > n_ctx) {
    return absl::OutOfRangeError(
        absl::StrCat("prompt (", r.prompt_ids.size(), " tokens) + ", r.n_predict,
                     " generated tokens exceed the context of ", n_ctx, " tokens"));
  }
  return absl::OkStatus();
}

GenerationState::GenerationState(GenerationRequest request)
    : request_(std::move(request)), history_(request_.prompt_ids), done_(request_.n_predict == 0) {}

bool GenerationState::Accept(TokenId token, int64_t position, bool is_end_of_generation) {
  if (done_ || position != next_position()) return false;
  history_.push_back(token);
  stopped_by_token_ = (request_.stop_at_eos && is_end_of_generation) ||
                      std::find(request_.stop_ids.begin(), request_.stop_ids.end(), token) !=
                          request_.stop_ids.end();
  done_ = stopped_by_token_ || n_generated() >= request_.n_predict;
  return true;
}

double GenerationResult::prompt_tokens_per_s() const {
  return prompt_seconds > 0 ? static_cast<double>(n_prompt) / prompt_seconds : 0;
}

double GenerationResult::generated_tokens_per_s() const {
  return decode_seconds > 0 ? static_cast<double>(n_decode_steps) / decode_seconds : 0;
}

}  // namespace tandem
