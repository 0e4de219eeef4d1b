#include "coordinator/model_profile.h"

#include <algorithm>
#include <charconv>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"

namespace tandem {
namespace {

// The layer index of a "blk.<i>.<rest>" tensor name, or -1 for other tensors.
int64_t LayerOf(std::string_view name) {
  constexpr std::string_view kPrefix = "blk.";
  if (!name.starts_with(kPrefix)) return -1;
  name.remove_prefix(kPrefix.size());
  int64_t index = -1;
  const auto [end, error] = std::from_chars(name.data(), name.data() + name.size(), index);
  if (error != std::errc() || end == name.data() || end == name.data() + name.size() ||
      *end != '.') {
    return -1;
  }
  return index;
}

}  // namespace

absl::StatusOr<partition::ModelProfile> BuildModelProfile(const GgufFile& file,
                                                          const Hparams& hparams,
                                                          size_t wire_bytes_per_value) {
  if (hparams.n_layer <= 0 || hparams.n_embd <= 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: n_layer (%d) and n_embd (%d) must be positive", file.path(),
                        hparams.n_layer, hparams.n_embd));
  }
  partition::ModelProfile profile;
  profile.layers.resize(hparams.n_layer);
  // A node's KV cache holds f32 keys and values, n_embd_kv each, per position and layer
  // (node/kv_cache.h).
  const uint64_t kv_per_token = 2ull * static_cast<uint64_t>(hparams.n_embd_kv()) * sizeof(float);
  std::vector<bool> has_tensors(hparams.n_layer, false);
  for (const GgufTensor& tensor : file.tensors()) {
    const int64_t layer = LayerOf(tensor.name);
    if (layer < 0) continue;
    if (layer >= hparams.n_layer) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: tensor %s names layer %d but the model has %d layers", file.path(),
                          tensor.name, layer, hparams.n_layer));
    }
    partition::LayerProfile& profile_layer = profile.layers[layer];
    profile_layer.weight_bytes += tensor.size_bytes;
    profile_layer.bytes_read_per_token += static_cast<double>(tensor.size_bytes);
    profile_layer.flops_per_token += 2.0 * static_cast<double>(tensor.n_elements());
    has_tensors[layer] = true;
  }
  for (int64_t l = 0; l < hparams.n_layer; ++l) {
    if (!has_tensors[l]) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: layer %d has no blk.%d.* tensors", file.path(), l, l));
    }
    profile.layers[l].kv_bytes_per_token = kv_per_token;
  }

  const GgufTensor* embedding = file.FindTensor("token_embd.weight");
  if (embedding == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: tensor token_embd.weight is missing", file.path()));
  }
  profile.embedding.weight_bytes = embedding->size_bytes;
  const int64_t rows = std::max<int64_t>(embedding->n_rows(), 1);
  profile.embedding.bytes_read_per_token = static_cast<double>(embedding->size_bytes) / rows;

  const GgufTensor* output = file.FindTensor("output.weight");
  profile.head_shares_embedding_weights = output == nullptr;
  if (output == nullptr) output = embedding;
  profile.head.weight_bytes = output->size_bytes;
  profile.head.flops_per_token = 2.0 * static_cast<double>(output->n_elements());
  if (const GgufTensor* norm = file.FindTensor("output_norm.weight"); norm != nullptr) {
    profile.head.weight_bytes += norm->size_bytes;
    profile.head.flops_per_token += 2.0 * static_cast<double>(norm->n_elements());
  }
  profile.head.bytes_read_per_token = static_cast<double>(profile.head.weight_bytes);

  profile.activation_bytes_per_token =
      static_cast<double>(hparams.n_embd) * static_cast<double>(wire_bytes_per_value);
  return profile;
}

}  // namespace tandem
