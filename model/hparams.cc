#include "model/hparams.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace tandem {

const std::vector<std::string>& SupportedArchitectures() {
  static const std::vector<std::string> kNames = {"llama", "qwen2", "phi3", "gemma2"};
  return kNames;
}

absl::StatusOr<Hparams> ReadHparams(const GgufFile& file) {
  Hparams h;
  auto arch = file.GetString("general.architecture");
  if (!arch.ok()) return arch.status();
  h.architecture = *arch;
  const std::vector<std::string>& supported = SupportedArchitectures();
  if (std::find(supported.begin(), supported.end(), h.architecture) == supported.end()) {
    return absl::UnimplementedError(
        absl::StrCat(file.path(), ": architecture '", h.architecture,
                     "' is not supported (supported: ", absl::StrJoin(supported, ", "), ")"));
  }
  const std::string p = h.architecture + ".";
  auto get = [&](const std::string& key, int64_t* out) -> absl::Status {
    auto v = file.GetInt(p + key);
    if (!v.ok()) return v.status();
    *out = *v;
    return absl::OkStatus();
  };
  for (auto [key, out] :
       {std::pair{"embedding_length", &h.n_embd}, std::pair{"block_count", &h.n_layer},
        std::pair{"attention.head_count", &h.n_head}, std::pair{"feed_forward_length", &h.n_ff}}) {
    absl::Status s = get(key, out);
    if (!s.ok()) return s;
  }
  auto ctx = file.GetInt(p + "context_length", 2048);
  if (!ctx.ok()) return ctx.status();
  h.n_ctx_train = *ctx;
  auto head_kv = file.GetInt(p + "attention.head_count_kv", h.n_head);
  if (!head_kv.ok()) return head_kv.status();
  h.n_head_kv = *head_kv;

  auto bad = [&](absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat(file.path(), ": ", what));
  };
  if (h.n_embd <= 0 || h.n_embd > (1 << 20))
    return bad(absl::StrCat("embedding_length ", h.n_embd, " is out of range"));
  if (h.n_layer <= 0 || h.n_layer > 4096)
    return bad(absl::StrCat("block_count ", h.n_layer, " is out of range"));
  if (h.n_head <= 0 || h.n_head > h.n_embd) {
    return bad(absl::StrCat("head_count ", h.n_head, " is out of range"));
  }
  if (h.n_head_kv <= 0 || h.n_head % h.n_head_kv != 0) {
    return bad(
        absl::StrCat("head_count_kv ", h.n_head_kv, " does not divide head_count ", h.n_head));
  }
  // Bounded where a context is chosen (base/generation.h); here only its sign.
  if (h.n_ctx_train <= 0)
    return bad(absl::StrCat("context_length ", h.n_ctx_train, " is out of range"));
  if (h.n_ff <= 0 || h.n_ff > (1 << 22))
    return bad(absl::StrCat("feed_forward_length ", h.n_ff, " is out of range"));
  // The head size is n_embd / n_head unless the file gives it (Gemma 2: 256 with 3584 / 16).
  if (file.Has(p + "attention.key_length")) {
    auto key_length = file.GetInt(p + "attention.key_length");
    if (!key_length.ok()) return key_length.status();
    auto value_length = file.GetInt(p + "attention.value_length", *key_length);
    if (!value_length.ok()) return value_length.status();
    if (*key_length <= 0 || *key_length > 4096 || *value_length != *key_length) {
      return bad(absl::StrCat("attention.key_length ", *key_length, " and value_length ",
                              *value_length, " must be equal and in [1, 4096]"));
    }
    h.head_dim = *key_length;
  } else {
    if (h.n_embd % h.n_head != 0) {
      return bad(
          absl::StrCat("head_count ", h.n_head, " does not divide embedding_length ", h.n_embd));
    }
    h.head_dim = h.n_embd / h.n_head;
  }
  auto rot = file.GetInt(p + "rope.dimension_count", h.head_dim);
  if (!rot.ok()) return rot.status();
  h.n_rot = *rot;
  if (h.n_rot <= 0 || h.n_rot > h.head_dim || h.n_rot % 2 != 0) {
    return bad(
        absl::StrCat("rope.dimension_count ", h.n_rot, " is invalid for head size ", h.head_dim));
  }
  auto eps = file.GetFloat(p + "attention.layer_norm_rms_epsilon", 1e-5);
  if (!eps.ok()) return eps.status();
  h.rms_eps = static_cast<float>(*eps);
  auto base = file.GetFloat(p + "rope.freq_base", 10000.0);
  if (!base.ok()) return base.status();
  h.rope_freq_base = static_cast<float>(*base);
  auto scale = file.GetFloat(p + "rope.scale_linear", 1.0);
  if (!scale.ok()) return scale.status();
  h.rope_freq_scale = static_cast<float>(1.0 / *scale);
  if (file.Has(p + "attention.sliding_window")) {
    auto swa = file.GetInt(p + "attention.sliding_window");
    if (!swa.ok()) return swa.status();
    if (*swa < 0) return bad(absl::StrCat("attention.sliding_window ", *swa, " is negative"));
    h.n_swa = *swa;
  }
  for (auto [key, out] : {std::pair{"attn_logit_softcapping", &h.attn_softcap},
                          std::pair{"final_logit_softcapping", &h.final_softcap},
                          std::pair{"attention.query_pre_attn_scalar", &h.query_pre_attn_scalar}}) {
    if (!file.Has(p + key)) continue;
    auto v = file.GetFloat(p + key);
    if (!v.ok()) return v.status();
    if (!(*v > 0)) return bad(absl::StrCat(key, " ", *v, " must be positive"));
    *out = static_cast<float>(*v);
  }

  const GgufTensor* embd = file.FindTensor("token_embd.weight");
  if (!embd)
    return absl::NotFoundError(
        absl::StrCat(file.path(), ": tensor 'token_embd.weight' is missing"));
  if (embd->dims.size() < 2 || embd->dims[0] != h.n_embd) {
    return bad(absl::StrCat("tensor 'token_embd.weight' has shape ", embd->ShapeString(),
                            ", expected [", h.n_embd, ", n_vocab]"));
  }
  h.n_vocab = embd->dims[1];
  return h;
}

}  // namespace tandem
