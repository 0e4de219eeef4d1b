#include "node/model_shard.h"

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"

namespace tandem {

absl::StatusOr<std::unique_ptr<ModelShard>> ModelShard::Load(std::shared_ptr<const GgufFile> file,
                                                             LayerRange range,
                                                             ShardOptions options) {
  std::unique_ptr<ModelShard> shard(new ModelShard());
  shard->file_ = file;
  TANDEM_ASSIGN_OR_RETURN(shard->hparams_, ReadHparams(*file));
  const Hparams& h = shard->hparams_;
  TANDEM_ASSIGN_OR_RETURN(shard->arch_, ArchSpecFor(h));
  if (range.layer_first < 0 || range.layer_last > h.n_layer ||
      range.layer_first >= range.layer_last) {
    return absl::InvalidArgumentError(absl::StrCat("layer range [", range.layer_first, ", ",
                                                   range.layer_last, ") is not within the model's ",
                                                   h.n_layer, " layers"));
  }
  shard->range_ = range;
  WeightLoader load(*file, options, &shard->weight_bytes_, &shard->vectors_);
  const int64_t n_embd = h.n_embd;

  if (const GgufTensor* freqs = file->FindTensor("rope_freqs.weight")) {
    TANDEM_ASSIGN_OR_RETURN(shard->rope_freqs_, load.Vector("rope_freqs.weight", h.n_rot / 2));
    (void)freqs;
  }
  if (shard->has_embedding()) {
    TANDEM_ASSIGN_OR_RETURN(shard->token_embd_,
                            load.Matrix("token_embd.weight", h.n_vocab, n_embd));
  }
  for (int i = range.layer_first; i < range.layer_last; ++i) {
    LayerWeights w;
    TANDEM_RETURN_IF_ERROR(shard->arch_.load_layer(load, h, i, &w));
    shard->layers_.push_back(std::move(w));
    if (options.on_layer) options.on_layer(i + 1 - range.layer_first, range.size());
  }
  if (shard->has_head()) {
    TANDEM_ASSIGN_OR_RETURN(shard->output_norm_, load.Vector("output_norm.weight", n_embd));
    // Tied embeddings: the head is the token embedding when output.weight is absent.
    const char* head = file->FindTensor("output.weight") ? "output.weight" : "token_embd.weight";
    TANDEM_ASSIGN_OR_RETURN(shard->output_, load.Matrix(head, h.n_vocab, n_embd));
  }
  return shard;
}

}  // namespace tandem
