// The decoder forward pass over one shard's contiguous layer range. The embedding lookup
// runs only on the first stage, the final norm and output head only on the last; in
// between, activations of shape (n_tokens, n_embd) go in and come out. Several sessions
// run as one batch: every weight is multiplied once for all their tokens. What differs
// between architectures comes from the shard's ArchSpec (node/arch/).
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "node/kernels/thread_pool.h"
#include "node/kv_cache.h"
#include "node/model_shard.h"
#include "node/rope.h"

namespace tandem {

using TokenId = int32_t;

// The tokens of one session in a batch: positions [position, position + n_tokens).
struct SequenceSlice {
  KvCache* cache = nullptr;
  int64_t position = 0;
  int64_t n_tokens = 0;
};

class Forward {
 public:
  Forward(const ModelShard& shard, ThreadPool& pool);

  const ModelShard& shard() const { return shard_; }

  // A KV cache for this shard's layers (RESOURCE_EXHAUSTED when it cannot be had).
  absl::StatusOr<std::unique_ptr<KvCache>> NewCache(int64_t n_ctx) const;

  // Token embeddings into x (tokens.size(), n_embd). First stage only.
  void Embed(absl::Span<const TokenId> tokens, float* x) const;

  // Runs this shard's layers in place on x (sum of n_tokens, n_embd); the slices'
  // tokens are stored in x back to back, in order.
  void RunLayers(absl::Span<const SequenceSlice> slices, float* x);

  // Final norm and output head for n_rows rows of x: logits (n_rows, n_vocab). Last stage only.
  void Logits(const float* x, int64_t n_rows, float* logits);

 private:
  void Attention(const SequenceSlice& slice, int layer, const float* q, float* out, int64_t row0);
  void FeedForward(const LayerWeights& w, int64_t n, float* x);
  void Reserve(int64_t n_tokens);

  const ModelShard& shard_;
  const Hparams& h_;
  const ArchSpec& arch_;
  ThreadPool& pool_;
  Rope rope_;
  // Scratch, grown on demand. Shapes per token row.
  std::vector<float> xn_;         // (n, n_embd)
  std::vector<float> q_;          // (n, n_embd_q)
  std::vector<float> k_;          // (n, n_embd_kv)
  std::vector<float> v_;          // (n, n_embd_kv)
  std::vector<float> attn_;       // (n, n_embd_q)
  std::vector<float> gate_;       // (n, n_ff)
  std::vector<float> up_;         // (n, n_ff)
  std::vector<float> proj_;       // (n, n_embd)
  std::vector<float> last_rows_;  // the last layer's output rows (see RunLayers)
};

}  // namespace tandem
