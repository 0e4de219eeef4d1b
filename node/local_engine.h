// The single-machine engine: every layer in one process, run as a one-stage pipeline
// through the same Stage a cluster node uses, so the local path and the cluster validate
// and compute with the same code and cannot drift. `tandem generate`, `tandem bench`, the
// golden tests and the benchmarks all use it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "base/generation.h"
#include "model/gguf.h"
#include "node/stage.h"

namespace tandem {

struct LocalEngineOptions {
  int threads = 1;
  int64_t n_ctx = 0;  // 0: the model's training context
};

class LocalEngine {
 public:
  static absl::StatusOr<std::unique_ptr<LocalEngine>> Create(std::shared_ptr<const GgufFile> file,
                                                             const LocalEngineOptions& options);

  const Hparams& hparams() const { return stage_->shard().hparams(); }
  const ModelShard& shard() const { return stage_->shard(); }
  int64_t n_ctx() const { return stage_->config().n_ctx; }
  ThreadPool& pool() { return stage_->pool(); }

  // Prefills the prompt, then decodes one token at a time on a fresh KV cache. on_token
  // sees each token as it is sampled and stops generation by returning false; is_eog tells
  // end-of-generation tokens (used when the request stops at EOS).
  absl::StatusOr<GenerationResult> Generate(const GenerationRequest& request,
                                            const std::function<bool(TokenId)>& is_eog,
                                            const std::function<bool(TokenId)>& on_token);

  // The logits (n_vocab) from which the latest token was sampled.
  const std::vector<float>& last_logits() const { return stage_->last_logits(); }

 private:
  explicit LocalEngine(std::unique_ptr<Stage> stage) : stage_(std::move(stage)) {}
  // Feeds history[from, end) through the stage and returns the sampled token.
  absl::StatusOr<TokenId> Step(uint64_t session_id, const GenerationState& state, int64_t from);

  std::unique_ptr<Stage> stage_;
  uint64_t next_session_id_ = 1;
};

}  // namespace tandem
