// Hyper-parameters of a Llama-family model, read from GGUF metadata.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "model/gguf.h"

namespace tandem {

struct Hparams {
  std::string architecture;  // general.architecture
  int64_t n_vocab = 0;
  int64_t n_ctx_train = 0;
  int64_t n_embd = 0;
  int64_t n_layer = 0;
  int64_t n_head = 0;
  int64_t n_head_kv = 0;
  int64_t n_ff = 0;
  int64_t head_dim = 0;  // n_embd / n_head
  int64_t n_rot = 0;     // rotary dimensions per head
  float rms_eps = 1e-5f;
  float rope_freq_base = 10000.0f;
  float rope_freq_scale = 1.0f;

  int64_t n_embd_kv() const { return head_dim * n_head_kv; }
};

// Reads and checks the hyper-parameters; an unsupported architecture or an inconsistent
// value is an error naming the key.
absl::StatusOr<Hparams> ReadHparams(const GgufFile& file);

}  // namespace tandem
