// Qwen2 / Qwen2.5: llama's block with biases on q, k and v (added before RoPE) and NEOX
// RoPE. Small Qwen2 files tie the classifier to the embeddings (no output.weight).
#include <cmath>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "node/arch/arch.h"
#include "node/model_shard.h"
#include "node/weight_loader.h"

namespace tandem {
namespace {

absl::Status LoadQwen2Layer(WeightLoader& load, const Hparams& h, int layer, LayerWeights* w) {
  TANDEM_RETURN_IF_ERROR(LoadLlamaLayer(load, h, layer, w));
  const std::string p = absl::StrCat("blk.", layer, ".");
  TANDEM_ASSIGN_OR_RETURN(w->bq, load.Vector(p + "attn_q.bias", h.n_embd_q()));
  TANDEM_ASSIGN_OR_RETURN(w->bk, load.Vector(p + "attn_k.bias", h.n_embd_kv()));
  TANDEM_ASSIGN_OR_RETURN(w->bv, load.Vector(p + "attn_v.bias", h.n_embd_kv()));
  return absl::OkStatus();
}

}  // namespace

ArchSpec Qwen2Spec(const Hparams& h) {
  ArchSpec spec;
  spec.name = "qwen2";
  spec.rope_style = RopeStyle::kNeox;
  spec.score_scale = 1.0f / std::sqrt(static_cast<float>(h.head_dim));
  spec.sliding_window.assign(h.n_layer, 0);
  spec.load_layer = LoadQwen2Layer;
  return spec;
}

}  // namespace tandem
