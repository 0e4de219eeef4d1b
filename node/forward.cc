#include "node/forward.h"

#include <algorithm>
#include <cmath>

#include "node/kernels/ops.h"

namespace tandem {

Forward::Forward(const ModelShard& shard, ThreadPool& pool)
    : shard_(shard),
      h_(shard.hparams()),
      pool_(pool),
      rope_(h_.head_dim, h_.n_rot, h_.rope_freq_base, h_.rope_freq_scale, shard.rope_freqs()) {}

absl::StatusOr<std::unique_ptr<KvCache>> Forward::NewCache(int64_t n_ctx) const {
  return KvCache::Create(shard_.range().size(), n_ctx, h_.n_embd_kv());
}

void Forward::Embed(absl::Span<const TokenId> tokens, float* x) const {
  for (size_t i = 0; i < tokens.size(); ++i) {
    DequantizeRow(shard_.token_embd(), tokens[i], x + i * h_.n_embd);
  }
}

void Forward::Reserve(int64_t n) {
  auto grow = [n](std::vector<float>& v, int64_t width) {
    if (static_cast<int64_t>(v.size()) < n * width) v.resize(n * width);
  };
  grow(xn_, h_.n_embd);
  grow(q_, h_.n_embd);
  grow(k_, h_.n_embd_kv());
  grow(v_, h_.n_embd_kv());
  grow(attn_, h_.n_embd);
  grow(gate_, h_.n_ff);
  grow(up_, h_.n_ff);
  grow(proj_, h_.n_embd);
}

void Forward::RunLayers(absl::Span<const SequenceSlice> slices, float* x) {
  int64_t n = 0;
  for (const auto& s : slices) n += s.n_tokens;
  if (n == 0) return;
  Reserve(n);
  const int64_t n_embd = h_.n_embd, n_kv = h_.n_embd_kv(), n_ff = h_.n_ff;

  for (int il = shard_.range().layer_first; il < shard_.range().layer_last; ++il) {
    const LayerWeights& w = shard_.layer(il);
    const int local = il - shard_.range().layer_first;

    // Attention block: xn = rmsnorm(x) * attn_norm                       (n, n_embd)
    for (int64_t i = 0; i < n; ++i) {
      RmsNorm(x + i * n_embd, w.attn_norm, n_embd, h_.rms_eps, xn_.data() + i * n_embd);
    }
    MatMul(w.wq, xn_.data(), n, q_.data(), pool_);  // q (n, n_head * head_dim)
    MatMul(w.wk, xn_.data(), n, k_.data(), pool_);  // k (n, n_head_kv * head_dim)
    MatMul(w.wv, xn_.data(), n, v_.data(), pool_);  // v (n, n_head_kv * head_dim)

    // Rotate q and k at their positions, then append k and v to each session's cache.
    int64_t row = 0;
    for (const auto& s : slices) {
      for (int64_t t = 0; t < s.n_tokens; ++t, ++row) {
        const int64_t pos = s.position + t;
        rope_.Apply(q_.data() + row * n_embd, h_.n_head, pos);
        rope_.Apply(k_.data() + row * n_kv, h_.n_head_kv, pos);
        std::copy_n(k_.data() + row * n_kv, n_kv, s.cache->keys(local) + pos * n_kv);
        std::copy_n(v_.data() + row * n_kv, n_kv, s.cache->values(local) + pos * n_kv);
      }
    }
    row = 0;
    for (const auto& s : slices) {
      Attention(s, local, q_.data(), attn_.data(), row);  // attn (n, n_embd)
      row += s.n_tokens;
    }
    MatMul(w.wo, attn_.data(), n, proj_.data(), pool_);
    for (int64_t i = 0; i < n * n_embd; ++i) x[i] += proj_[i];  // residual

    // Feed-forward block: x += W_down (silu(W_gate xn) * (W_up xn))
    for (int64_t i = 0; i < n; ++i) {
      RmsNorm(x + i * n_embd, w.ffn_norm, n_embd, h_.rms_eps, xn_.data() + i * n_embd);
    }
    MatMul(w.w_gate, xn_.data(), n, gate_.data(), pool_);  // (n, n_ff)
    MatMul(w.w_up, xn_.data(), n, up_.data(), pool_);      // (n, n_ff)
    SwiGlu(gate_.data(), up_.data(), n * n_ff, gate_.data());
    MatMul(w.w_down, gate_.data(), n, proj_.data(), pool_);  // (n, n_embd)
    for (int64_t i = 0; i < n * n_embd; ++i) x[i] += proj_[i];
  }
}

void Forward::Attention(const SequenceSlice& s, int local, const float* q, float* out,
                        int64_t row0) {
  const int64_t head_dim = h_.head_dim, n_kv = h_.n_embd_kv(), n_embd = h_.n_embd;
  const int64_t group = h_.n_head / h_.n_head_kv;
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  const float* keys = s.cache->keys(local);
  const float* values = s.cache->values(local);
  // One unit of work is (token, head): causal attention over positions [0, pos].
  pool_.ParallelFor(s.n_tokens * h_.n_head, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> scores(s.position + s.n_tokens);
    for (int64_t u = begin; u < end; ++u) {
      const int64_t t = u / h_.n_head, head = u % h_.n_head;
      const int64_t pos = s.position + t;
      const int64_t kv_off = (head / group) * head_dim;
      const float* qh = q + (row0 + t) * n_embd + head * head_dim;
      for (int64_t j = 0; j <= pos; ++j) {
        scores[j] = Dot(qh, keys + j * n_kv + kv_off, head_dim) * scale;  // (pos + 1)
      }
      Softmax(scores.data(), pos + 1);
      float* o = out + (row0 + t) * n_embd + head * head_dim;  // (head_dim)
      std::fill_n(o, head_dim, 0.0f);
      for (int64_t j = 0; j <= pos; ++j) Axpy(scores[j], values + j * n_kv + kv_off, o, head_dim);
    }
  });
}

void Forward::Logits(const float* x, int64_t n_rows, float* logits) {
  Reserve(n_rows);
  for (int64_t i = 0; i < n_rows; ++i) {
    RmsNorm(x + i * h_.n_embd, shard_.output_norm(), h_.n_embd, h_.rms_eps,
            xn_.data() + i * h_.n_embd);
  }
  MatMul(shard_.output(), xn_.data(), n_rows, logits, pool_);  // (n_rows, n_vocab)
}

}  // namespace tandem
