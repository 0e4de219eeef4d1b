#include "node/local_stepper.h"

#include "absl/strings/str_cat.h"

namespace tandem {

LocalStepper::LocalStepper(Forward& forward, int64_t n_ctx)
    : forward_(forward), cache_(forward.NewCache(n_ctx)) {}

absl::StatusOr<TokenId> LocalStepper::Step(absl::Span<const TokenId> tokens, int64_t position,
                                           const SamplingParams& sampling,
                                           absl::Span<const TokenId> history) {
  const Hparams& h = forward_.shard().hparams();
  if (position < 0 || position + static_cast<int64_t>(tokens.size()) > cache_->n_ctx()) {
    return absl::OutOfRangeError(absl::StrCat("positions [", position, ", ", position + tokens.size(),
                                              ") exceed the context of ", cache_->n_ctx()));
  }
  for (TokenId t : tokens) {
    if (t < 0 || t >= h.n_vocab) {
      return absl::InvalidArgumentError(absl::StrCat("token id ", t, " is outside the vocabulary of ", h.n_vocab));
    }
  }
  const int64_t n = static_cast<int64_t>(tokens.size());
  x_.resize(n * h.n_embd);
  forward_.Embed(tokens, x_.data());
  SequenceSlice slice{cache_.get(), position, n};
  forward_.RunLayers({&slice, 1}, x_.data());
  logits_.resize(h.n_vocab);
  forward_.Logits(x_.data() + (n - 1) * h.n_embd, 1, logits_.data());
  return SampleToken(logits_, sampling, history, position + n);
}

}  // namespace tandem
