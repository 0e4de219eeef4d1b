// Runs every layer in this process: the single-machine engine behind `tandem generate`.
#pragma once

#include <memory>
#include <vector>

#include "coordinator/generation.h"
#include "node/forward.h"

namespace tandem {

class LocalStepper : public Stepper {
 public:
  // `forward` must cover all layers.
  LocalStepper(Forward& forward, int64_t n_ctx);

  absl::StatusOr<TokenId> Step(absl::Span<const TokenId> tokens, int64_t position,
                               const SamplingParams& sampling,
                               absl::Span<const TokenId> history) override;

  // Logits of the last position of the last Step (n_vocab values).
  const std::vector<float>& last_logits() const { return logits_; }

 private:
  Forward& forward_;
  std::unique_ptr<KvCache> cache_;
  std::vector<float> x_;       // (n_tokens, n_embd)
  std::vector<float> logits_;  // (n_vocab)
};

}  // namespace tandem
