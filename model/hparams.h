// Hyper-parameters of a decoder-only transformer (llama, qwen2, phi3, gemma2), read from
// GGUF metadata under the `<general.architecture>.` prefix.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/gguf.h"

namespace tandem {

// The values of general.architecture this build runs. node/arch/ holds one file per name.
const std::vector<std::string>& SupportedArchitectures();

struct Hparams {
  std::string architecture;  // general.architecture, one of SupportedArchitectures()
  int64_t n_vocab = 0;
  int64_t n_ctx_train = 0;
  int64_t n_embd = 0;
  int64_t n_layer = 0;
  int64_t n_head = 0;
  int64_t n_head_kv = 0;
  int64_t n_ff = 0;
  int64_t head_dim = 0;  // attention.key_length, else n_embd / n_head
  int64_t n_rot = 0;     // rotary dimensions per head
  float rms_eps = 1e-5f;
  float rope_freq_base = 10000.0f;
  float rope_freq_scale = 1.0f;
  // attention.sliding_window (0: none). Which layers use it, and the default when the
  // key is absent, are the architecture's choice (node/arch/).
  std::optional<int64_t> n_swa;
  // Soft-capping (cap * tanh(x / cap)) of attention scores and of the final logits, when
  // the file says so; an architecture may supply a default.
  std::optional<float> attn_softcap;
  std::optional<float> final_softcap;
  std::optional<float> query_pre_attn_scalar;  // attention.query_pre_attn_scalar

  int64_t n_embd_q() const { return head_dim * n_head; }
  int64_t n_embd_kv() const { return head_dim * n_head_kv; }
};

// Reads and checks the hyper-parameters; an unsupported architecture or an inconsistent
// value is an error naming the key.
absl::StatusOr<Hparams> ReadHparams(const GgufFile& file);

}  // namespace tandem
