#include "node/local_engine.h"

#include <chrono>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "model/hparams.h"
#include "net/frames.h"

namespace tandem {

absl::StatusOr<std::unique_ptr<LocalEngine>> LocalEngine::Create(
    std::shared_ptr<const GgufFile> file, const LocalEngineOptions& options) {
  TANDEM_ASSIGN_OR_RETURN(Hparams h, ReadHparams(*file));
  StageConfig config;
  config.range = {0, static_cast<int>(h.n_layer)};
  config.n_ctx = options.n_ctx > 0 ? options.n_ctx : h.n_ctx_train;
  if (absl::Status s = ValidateContextLength(
          config.n_ctx, options.n_ctx > 0 ? "-c" : "the model's context length");
      !s.ok()) {
    return options.n_ctx > 0 ? s
                             : absl::InvalidArgumentError(
                                   absl::StrCat(s.message(), "; choose a context with -c"));
  }
  TANDEM_ASSIGN_OR_RETURN(std::unique_ptr<Stage> stage,
                          Stage::Create(std::move(file), config, options.threads));
  return std::unique_ptr<LocalEngine>(new LocalEngine(std::move(stage)));
}

absl::StatusOr<TokenId> LocalEngine::Step(uint64_t session_id, const GenerationState& state,
                                          int64_t from) {
  const auto frames = HistoryFrames(session_id, stage_->config().plan_epoch, state.history(), from,
                                    PrefillChunkTokens(hparams().n_embd), state.sampling());
  TokenId token = -1;
  for (const v1::ActivationFrame& f : frames) {
    TANDEM_RETURN_IF_ERROR(stage_->Admit(f));
    std::vector<StageOutput> out = stage_->RunBatch({&f});
    if (out[0].has_token) token = out[0].token;
  }
  return token;
}

absl::StatusOr<GenerationResult> LocalEngine::Generate(
    const GenerationRequest& request, const std::function<bool(TokenId)>& is_eog,
    const std::function<bool(TokenId)>& on_token) {
  TANDEM_RETURN_IF_ERROR(ValidateGenerationRequest(request, n_ctx(), hparams().n_vocab));
  using Clock = std::chrono::steady_clock;
  GenerationResult result;
  result.n_prompt = static_cast<int64_t>(request.prompt_ids.size());
  GenerationState state(request);
  if (state.done()) return result;
  const uint64_t session_id = next_session_id_++;
  // Frees the session's KV cache however generation ends.
  absl::Cleanup end_session = [&] {
    (void)stage_->Admit(EndSessionFrame(session_id, stage_->config().plan_epoch));
  };
  const auto t0 = Clock::now();
  auto t1 = t0;
  int64_t from = 0;
  while (!state.done()) {
    TANDEM_ASSIGN_OR_RETURN(TokenId token, Step(session_id, state, from));
    if (result.ids.empty()) {
      t1 = Clock::now();
      result.prompt_seconds = std::chrono::duration<double>(t1 - t0).count();
    } else {
      ++result.n_decode_steps;
    }
    from = state.next_position();
    state.Accept(token, from, is_eog(token));
    result.ids.push_back(token);
    if (!on_token(token)) break;
  }
  result.decode_seconds = std::chrono::duration<double>(Clock::now() - t1).count();
  return result;
}

}  // namespace tandem
