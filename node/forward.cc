#include "node/forward.h"

#include <algorithm>
#include <cmath>

#include "node/kernels/ops.h"

namespace tandem {
namespace {

// x[i] += bias[i % width] for (n, width) rows; a null bias adds nothing.
void AddBias(const float* bias, int64_t n, int64_t width, float* x) {
  if (bias == nullptr) return;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < width; ++j) x[i * width + j] += bias[j];
  }
}

// Rows of x (n, width) normalized in place by an optional norm; null leaves x as it is.
void PostNorm(const float* weight, int64_t n, int64_t width, float eps, float* x) {
  if (weight == nullptr) return;
  for (int64_t i = 0; i < n; ++i) RmsNorm(x + i * width, weight, width, eps, x + i * width);
}

}  // namespace

Forward::Forward(const ModelShard& shard, ThreadPool& pool)
    : shard_(shard),
      h_(shard.hparams()),
      arch_(shard.arch()),
      pool_(pool),
      rope_(arch_.rope_style, h_.head_dim, h_.n_rot, h_.rope_freq_base, h_.rope_freq_scale,
            shard.rope_freqs()) {}

absl::StatusOr<std::unique_ptr<KvCache>> Forward::NewCache(int64_t n_ctx) const {
  return KvCache::Create(shard_.range().size(), n_ctx, h_.n_embd_kv());
}

void Forward::Embed(absl::Span<const TokenId> tokens, float* x) const {
  for (size_t i = 0; i < tokens.size(); ++i) {
    float* row = x + i * h_.n_embd;
    DequantizeRow(shard_.token_embd(), tokens[i], row);
    // Gemma scales the embeddings by sqrt(n_embd); the others by 1, which is exact.
    for (int64_t j = 0; j < h_.n_embd; ++j) row[j] *= arch_.embedding_scale;
  }
}

void Forward::Reserve(int64_t n) {
  auto grow = [n](std::vector<float>& v, int64_t width) {
    if (static_cast<int64_t>(v.size()) < n * width) v.resize(n * width);
  };
  grow(xn_, h_.n_embd);
  grow(q_, h_.n_embd_q());
  grow(k_, h_.n_embd_kv());
  grow(v_, h_.n_embd_kv());
  grow(attn_, h_.n_embd_q());
  grow(gate_, h_.n_ff);
  grow(up_, h_.n_ff);
  grow(proj_, h_.n_embd);
}

void Forward::RunLayers(absl::Span<const SequenceSlice> slices, float* x) {
  int64_t n = 0;
  for (const auto& s : slices) n += s.n_tokens;
  if (n == 0) return;
  Reserve(n);
  const int64_t n_embd = h_.n_embd, n_q = h_.n_embd_q(), n_kv = h_.n_embd_kv();

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
    AddBias(w.bq, n, n_q, q_.data());               // qwen2's q, k, v biases
    AddBias(w.bk, n, n_kv, k_.data());
    AddBias(w.bv, n, n_kv, v_.data());

    // Rotate q and k at their positions, scale q, then append k and v to each session's
    // cache.
    int64_t row = 0;
    for (const auto& s : slices) {
      for (int64_t t = 0; t < s.n_tokens; ++t, ++row) {
        const int64_t pos = s.position + t;
        float* q = q_.data() + row * n_q;
        rope_.Apply(q, h_.n_head, pos);
        rope_.Apply(k_.data() + row * n_kv, h_.n_head_kv, pos);
        for (int64_t j = 0; j < n_q; ++j) q[j] *= arch_.query_scale;  // 1 for llama: exact
        std::copy_n(k_.data() + row * n_kv, n_kv, s.cache->keys(local) + pos * n_kv);
        std::copy_n(v_.data() + row * n_kv, n_kv, s.cache->values(local) + pos * n_kv);
      }
    }
    row = 0;
    for (const auto& s : slices) {
      Attention(s, il, q_.data(), attn_.data(), row);  // attn (n, n_head * head_dim)
      row += s.n_tokens;
    }
    MatMul(w.wo, attn_.data(), n, proj_.data(), pool_);               // (n, n_embd)
    PostNorm(w.attn_post_norm, n, n_embd, h_.rms_eps, proj_.data());  // gemma2
    for (int64_t i = 0; i < n * n_embd; ++i) x[i] += proj_[i];        // residual

    // Feed-forward block. In the model's last layer only the rows whose logits are taken
    // (the last of each slice) go on, as in llama.cpp (whose last layer keeps only its output
    // rows): the others are never read again, and an f32 or f16 product of one row takes
    // llama.cpp's one-token order rather than its batch order.
    if (il == h_.n_layer - 1 && n > static_cast<int64_t>(slices.size())) {
      const int64_t n_out = static_cast<int64_t>(slices.size());
      last_rows_.resize(n_out * n_embd);
      int64_t end = 0;
      for (int64_t i = 0; i < n_out; ++i) {
        end += slices[i].n_tokens;
        std::copy_n(x + (end - 1) * n_embd, n_embd, last_rows_.data() + i * n_embd);
      }
      FeedForward(w, n_out, last_rows_.data());
      end = 0;
      for (int64_t i = 0; i < n_out; ++i) {
        end += slices[i].n_tokens;
        std::copy_n(last_rows_.data() + i * n_embd, n_embd, x + (end - 1) * n_embd);
      }
    } else {
      FeedForward(w, n, x);
    }
  }
}

// x += W_down (act(W_gate xn) * (W_up xn)), xn = rmsnorm(x) * ffn_norm, for n rows.
void Forward::FeedForward(const LayerWeights& w, int64_t n, float* x) {
  const int64_t n_embd = h_.n_embd, n_ff = h_.n_ff;
  for (int64_t i = 0; i < n; ++i) {
    RmsNorm(x + i * n_embd, w.ffn_norm, n_embd, h_.rms_eps, xn_.data() + i * n_embd);
  }
  MatMul(w.w_gate, xn_.data(), n, gate_.data(), pool_);  // (n, n_ff)
  MatMul(w.w_up, xn_.data(), n, up_.data(), pool_);      // (n, n_ff)
  for (int64_t i = 0; i < n; ++i) {                      // row by row, as llama.cpp (see SwiGlu)
    float* g = gate_.data() + i * n_ff;
    switch (arch_.activation) {
      case GatedActivation::kSilu:
        SwiGlu(g, up_.data() + i * n_ff, n_ff, g);
        break;
      case GatedActivation::kGeluTanh:
        GeluTanhGlu(g, up_.data() + i * n_ff, n_ff, g);
        break;
    }
  }
  MatMul(w.w_down, gate_.data(), n, proj_.data(), pool_);          // (n, n_embd)
  PostNorm(w.ffn_post_norm, n, n_embd, h_.rms_eps, proj_.data());  // gemma2
  for (int64_t i = 0; i < n * n_embd; ++i) x[i] += proj_[i];
}

void Forward::Attention(const SequenceSlice& s, int layer, const float* q, float* out,
                        int64_t row0) {
  const int local = layer - shard_.range().layer_first;
  const int64_t head_dim = h_.head_dim, n_kv = h_.n_embd_kv(), n_q = h_.n_embd_q();
  const int64_t group = h_.n_head / h_.n_head_kv;
  const int64_t window = arch_.sliding_window[layer];  // 0: every earlier position
  const float scale = arch_.score_scale, cap = arch_.attn_softcap;
  const float* keys = s.cache->keys(local);
  const float* values = s.cache->values(local);
  // One unit of work is (token, head): causal attention over positions [first, pos], where
  // a sliding window hides keys `window` or more positions back.
  pool_.ParallelFor(s.n_tokens * h_.n_head, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> scores(s.position + s.n_tokens);
    for (int64_t u = begin; u < end; ++u) {
      const int64_t t = u / h_.n_head, head = u % h_.n_head;
      const int64_t pos = s.position + t;
      const int64_t first = window > 0 ? std::max<int64_t>(0, pos - window + 1) : 0;
      const int64_t n_keys = pos + 1 - first;
      const int64_t kv_off = (head / group) * head_dim;
      const float* qh = q + (row0 + t) * n_q + head * head_dim;
      // Keys outside the window are masked, not skipped, so every sum runs over the same
      // positions in the same order as llama.cpp's (see Softmax and WeightedSum).
      for (int64_t j = 0; j < first; ++j) scores[j] = -INFINITY;
      for (int64_t j = first; j <= pos; ++j) {
        scores[j] = Dot(qh, keys + j * n_kv + kv_off, head_dim) * scale;  // (pos + 1)
      }
      if (cap > 0) SoftCap(scores.data() + first, n_keys, cap);
      Softmax(scores.data(), pos + 1);
      float* o = out + (row0 + t) * n_q + head * head_dim;  // (head_dim)
      WeightedSum(scores.data(), values + kv_off, n_kv, pos + 1, head_dim, s.n_tokens > 1, o);
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
  if (arch_.final_softcap > 0) SoftCap(logits, n_rows * h_.n_vocab, arch_.final_softcap);
}

}  // namespace tandem
