// Gemma 2: embeddings scaled by sqrt(n_embd); RMS norms also after attention and after the
// feed-forward (their weights are stored with Gemma's 1 already added, so they multiply
// like any other); GeGLU with tanh GELU; NEOX RoPE; q scaled before the product; attention
// scores and final logits soft-capped; a sliding window on the even layers (0, 2, ...).
#include <cmath>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "node/arch/arch.h"
#include "node/model_shard.h"
#include "node/weight_loader.h"

namespace tandem {
namespace {

absl::Status LoadGemma2Layer(WeightLoader& load, const Hparams& h, int layer, LayerWeights* w) {
  TANDEM_RETURN_IF_ERROR(LoadLlamaLayer(load, h, layer, w));
  const std::string p = absl::StrCat("blk.", layer, ".");
  TANDEM_ASSIGN_OR_RETURN(w->attn_post_norm,
                          load.Vector(p + "post_attention_norm.weight", h.n_embd));
  TANDEM_ASSIGN_OR_RETURN(w->ffn_post_norm, load.Vector(p + "post_ffw_norm.weight", h.n_embd));
  return absl::OkStatus();
}

// Gemma 2's query scale. llama.cpp (and the released checkpoints) use 1/sqrt(head_dim) for
// 2B and 9B and 1/sqrt(n_embd / n_head) for 27B, the only 46-layer size; a file that says
// query_pre_attn_scalar gets 1/sqrt of that.
float QueryScale(const Hparams& h) {
  if (h.query_pre_attn_scalar) return 1.0f / std::sqrt(*h.query_pre_attn_scalar);
  if (h.n_layer == 46) return 1.0f / std::sqrt(static_cast<float>(h.n_embd / h.n_head));
  return 1.0f / std::sqrt(static_cast<float>(h.head_dim));
}

}  // namespace

ArchSpec Gemma2Spec(const Hparams& h) {
  ArchSpec spec;
  spec.name = "gemma2";
  spec.rope_style = RopeStyle::kNeox;
  spec.activation = GatedActivation::kGeluTanh;
  spec.embedding_scale = std::sqrt(static_cast<float>(h.n_embd));
  spec.query_scale = QueryScale(h);
  spec.score_scale = 1.0f;
  // Gemma 2's released values when the file does not say.
  spec.attn_softcap = h.attn_softcap.value_or(50.0f);
  spec.final_softcap = h.final_softcap.value_or(30.0f);
  const int64_t window = h.n_swa.value_or(4096);
  for (int64_t il = 0; il < h.n_layer; ++il)
    spec.sliding_window.push_back(il % 2 == 0 ? window : 0);
  spec.load_layer = LoadGemma2Layer;
  return spec;
}

}  // namespace tandem
