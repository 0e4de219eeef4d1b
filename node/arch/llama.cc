// Llama (1, 2, 3, 3.1): the shared block as it is. RoPE rotates adjacent pairs; Llama 3.1's
// rope_freqs tensor is read by the shard for every architecture that has it.
#include <cmath>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "node/arch/arch.h"
#include "node/model_shard.h"
#include "node/weight_loader.h"

namespace tandem {

absl::Status LoadLlamaLayer(WeightLoader& load, const Hparams& h, int layer, LayerWeights* w) {
  const std::string p = absl::StrCat("blk.", layer, ".");
  const int64_t n_embd = h.n_embd, n_q = h.n_embd_q(), n_kv = h.n_embd_kv(), n_ff = h.n_ff;
  TANDEM_ASSIGN_OR_RETURN(w->attn_norm, load.Vector(p + "attn_norm.weight", n_embd));
  TANDEM_ASSIGN_OR_RETURN(w->wq, load.Matrix(p + "attn_q.weight", n_q, n_embd));
  TANDEM_ASSIGN_OR_RETURN(w->wk, load.Matrix(p + "attn_k.weight", n_kv, n_embd));
  TANDEM_ASSIGN_OR_RETURN(w->wv, load.Matrix(p + "attn_v.weight", n_kv, n_embd));
  TANDEM_ASSIGN_OR_RETURN(w->wo, load.Matrix(p + "attn_output.weight", n_embd, n_q));
  TANDEM_ASSIGN_OR_RETURN(w->ffn_norm, load.Vector(p + "ffn_norm.weight", n_embd));
  TANDEM_ASSIGN_OR_RETURN(w->w_gate, load.Matrix(p + "ffn_gate.weight", n_ff, n_embd));
  TANDEM_ASSIGN_OR_RETURN(w->w_up, load.Matrix(p + "ffn_up.weight", n_ff, n_embd));
  TANDEM_ASSIGN_OR_RETURN(w->w_down, load.Matrix(p + "ffn_down.weight", n_embd, n_ff));
  return absl::OkStatus();
}

ArchSpec LlamaSpec(const Hparams& h) {
  ArchSpec spec;
  spec.name = "llama";
  spec.rope_style = RopeStyle::kNorm;
  spec.score_scale = 1.0f / std::sqrt(static_cast<float>(h.head_dim));
  spec.sliding_window.assign(h.n_layer, 0);  // llama.cpp builds no window mask for llama
  spec.load_layer = LoadLlamaLayer;
  return spec;
}

}  // namespace tandem
