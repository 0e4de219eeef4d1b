// What sets one architecture's forward pass apart from the shared transformer block of
// node/forward.cc: a descriptor of plain values plus the function that reads a layer's
// tensors. One file per architecture (llama.cc, qwen2.cc, phi3.cc, gemma2.cc) builds its
// descriptor from the hyper-parameters; the forward pass reads only the descriptor.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/hparams.h"

namespace tandem {

class WeightLoader;
struct LayerWeights;

// How RoPE pairs the dimensions of a head.
enum class RopeStyle {
  kNorm,  // adjacent pairs (2i, 2i + 1): llama
  kNeox,  // halves (i, i + n_rot / 2): qwen2, phi3, gemma2
};

// The gated feed-forward's activation: out = act(gate) * up.
enum class GatedActivation {
  kSilu,      // SwiGLU
  kGeluTanh,  // GeGLU with the tanh approximation, as ggml evaluates it (fp16 table)
};

struct ArchSpec {
  std::string name;  // general.architecture
  RopeStyle rope_style = RopeStyle::kNorm;
  GatedActivation activation = GatedActivation::kSilu;
  float embedding_scale = 1.0f;  // x = token_embd[id] * embedding_scale
  // Attention: q *= query_scale after RoPE; score = (q . k) * score_scale, then
  // attn_softcap * tanh(score / attn_softcap) when attn_softcap > 0.
  float query_scale = 1.0f;
  float score_scale = 1.0f;
  float attn_softcap = 0.0f;
  // logits = final_softcap * tanh(logits / final_softcap) when final_softcap > 0.
  float final_softcap = 0.0f;
  // Per absolute layer: attend only to the last `window` positions (0: all of them).
  std::vector<int64_t> sliding_window;
  // Reads layer `layer`'s tensors ("blk.<layer>.*") into *weights.
  absl::Status (*load_layer)(WeightLoader& load, const Hparams& h, int layer,
                             LayerWeights* weights) = nullptr;
};

// The descriptor for h.architecture; an unsupported one is an error naming it and the
// supported ones.
absl::StatusOr<ArchSpec> ArchSpecFor(const Hparams& h);

// One per file in node/arch/.
ArchSpec LlamaSpec(const Hparams& h);
ArchSpec Qwen2Spec(const Hparams& h);
ArchSpec Phi3Spec(const Hparams& h);
ArchSpec Gemma2Spec(const Hparams& h);

// The llama layout of a layer (separate q/k/v and gate/up, no biases or post-norms), which
// the others start from.
absl::Status LoadLlamaLayer(WeightLoader& load, const Hparams& h, int layer, LayerWeights* weights);

}  // namespace tandem
