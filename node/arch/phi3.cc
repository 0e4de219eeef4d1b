// Phi-3: one fused q/k/v matrix and one fused gate/up matrix, NEOX RoPE, q scaled by
// 1/sqrt(head_dim) before the product, and a sliding window in every layer (llama.cpp
// builds the window mask for all layers whenever attention.sliding_window > 0).
#include <cmath>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "node/arch/arch.h"
#include "node/model_shard.h"
#include "node/weight_loader.h"

namespace tandem {
namespace {

absl::Status LoadPhi3Layer(WeightLoader& load, const Hparams& h, int layer, LayerWeights* w) {
  const std::string p = absl::StrCat("blk.", layer, ".");
  const int64_t n_embd = h.n_embd, n_q = h.n_embd_q(), n_kv = h.n_embd_kv(), n_ff = h.n_ff;
  TANDEM_ASSIGN_OR_RETURN(w->attn_norm, load.Vector(p + "attn_norm.weight", n_embd));
  // attn_qkv rows: q (n_q), then k (n_kv), then v (n_kv).
  TANDEM_ASSIGN_OR_RETURN(std::vector<PreparedMatrix> qkv,
                          load.SplitRows(p + "attn_qkv.weight", {n_q, n_kv, n_kv}, n_embd));
  w->wq = std::move(qkv[0]);
  w->wk = std::move(qkv[1]);
  w->wv = std::move(qkv[2]);
  TANDEM_ASSIGN_OR_RETURN(w->wo, load.Matrix(p + "attn_output.weight", n_embd, n_q));
  TANDEM_ASSIGN_OR_RETURN(w->ffn_norm, load.Vector(p + "ffn_norm.weight", n_embd));
  // ffn_up rows: the gate (n_ff), then up (n_ff).
  TANDEM_ASSIGN_OR_RETURN(std::vector<PreparedMatrix> gate_up,
                          load.SplitRows(p + "ffn_up.weight", {n_ff, n_ff}, n_embd));
  w->w_gate = std::move(gate_up[0]);
  w->w_up = std::move(gate_up[1]);
  TANDEM_ASSIGN_OR_RETURN(w->w_down, load.Matrix(p + "ffn_down.weight", n_embd, n_ff));
  return absl::OkStatus();
}

}  // namespace

ArchSpec Phi3Spec(const Hparams& h) {
  ArchSpec spec;
  spec.name = "phi3";
  spec.rope_style = RopeStyle::kNeox;
  spec.query_scale = 1.0f / std::sqrt(static_cast<float>(h.head_dim));
  spec.score_scale = 1.0f;
  spec.sliding_window.assign(h.n_layer, h.n_swa.value_or(0));
  spec.load_layer = LoadPhi3Layer;
  return spec;
}

}  // namespace tandem
