#include "coordinator/generation.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "model/status_macros.h"

namespace tandem {

double GenerationResult::prompt_tokens_per_s() const {
  return prompt_seconds > 0 ? static_cast<double>(n_prompt) / prompt_seconds : 0;
}

double GenerationResult::generated_tokens_per_s() const {
  return decode_seconds > 0 ? static_cast<double>(n_decode_steps) / decode_seconds : 0;
}

absl::StatusOr<GenerationResult> RunGeneration(Stepper& stepper, const GenerationRequest& req,
                                               const std::function<bool(TokenId)>& is_eog,
                                               const std::function<bool(TokenId)>& on_token) {
  if (req.prompt_ids.empty()) return absl::InvalidArgumentError("the prompt has no tokens");
  if (req.n_predict < 0) return absl::InvalidArgumentError("the number of tokens to generate is negative");
  TANDEM_RETURN_IF_ERROR(ValidateSamplingParams(req.sampling));
  const int64_t needed = static_cast<int64_t>(req.prompt_ids.size()) + req.n_predict;
  if (req.n_ctx > 0 && needed > req.n_ctx) {
    return absl::OutOfRangeError(absl::StrCat("prompt (", req.prompt_ids.size(), " tokens) + ",
                                              req.n_predict, " generated tokens exceed the context of ",
                                              req.n_ctx, " tokens"));
  }
  using Clock = std::chrono::steady_clock;
  GenerationResult result;
  result.n_prompt = static_cast<int64_t>(req.prompt_ids.size());
  if (req.n_predict == 0) return result;
  std::vector<TokenId> history = req.prompt_ids;
  auto t0 = Clock::now();
  TANDEM_ASSIGN_OR_RETURN(TokenId next, stepper.Step(history, 0, req.sampling, history));
  auto t1 = Clock::now();
  result.prompt_seconds = std::chrono::duration<double>(t1 - t0).count();
  for (;;) {
    result.ids.push_back(next);
    history.push_back(next);
    if (!on_token(next)) break;
    if (req.stop_at_eos && is_eog(next)) break;
    if (static_cast<int32_t>(result.ids.size()) >= req.n_predict) break;
    const int64_t position = static_cast<int64_t>(history.size()) - 1;
    TANDEM_ASSIGN_OR_RETURN(next, stepper.Step(absl::MakeConstSpan(&history.back(), 1), position,
                                               req.sampling, history));
    ++result.n_decode_steps;
  }
  result.decode_seconds = std::chrono::duration<double>(Clock::now() - t1).count();
  return result;
}

}  // namespace tandem
