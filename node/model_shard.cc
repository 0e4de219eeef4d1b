#include "node/model_shard.h"

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"

namespace tandem {
namespace {

class ShardLoader {
 public:
  ShardLoader(const GgufFile& file, uint64_t* weight_bytes, ShardOptions options,
              std::vector<std::vector<float>>& vectors)
      : file_(file), bytes_(weight_bytes), options_(options), vectors_(vectors) {}

  absl::StatusOr<const float*> Vector(const std::string& name, int64_t n) {
    TANDEM_ASSIGN_OR_RETURN(const GgufTensor* t, file_.GetTensor(name, {n}));
    if (t->type != GgmlType::kF32) {
      return absl::InvalidArgumentError(absl::StrCat(file_.path(), ": tensor '", name, "' is ",
                                                     GgmlTypeName(t->type), ", expected f32"));
    }
    // Copied, so the mapped pages (and any large folio around them) can be released.
    const float* src = reinterpret_cast<const float*>(t->data);
    vectors_.emplace_back(src, src + n);
    *bytes_ += t->size_bytes;
    file_.mapping().DontNeed(static_cast<size_t>(t->data - file_.mapping().data()), t->size_bytes);
    return vectors_.back().data();
  }

  // A (rows, cols) matrix: ggml shape [cols, rows].
  absl::StatusOr<PreparedMatrix> Matrix(const std::string& name, int64_t rows, int64_t cols) {
    TANDEM_ASSIGN_OR_RETURN(const GgufTensor* t, file_.GetTensor(name, {cols, rows}));
    if (!MatMulSupports(t->type)) {
      return absl::UnimplementedError(absl::StrCat(file_.path(), ": tensor '", name, "' has type ",
                                                   GgmlTypeName(t->type),
                                                   ", which this build cannot multiply"));
    }
    *bytes_ += t->size_bytes;
    const size_t offset = static_cast<size_t>(t->data - file_.mapping().data());
    if (!options_.repack) {
      file_.mapping().WillNeed(offset, t->size_bytes);
      return Prepare(WeightMatrix{t->type, rows, cols, t->data}, {.repack = false});
    }
    auto prepared = Prepare(WeightMatrix{t->type, rows, cols, t->data});
    // The copy is what we read from now on: give the file's pages back.
    file_.mapping().DontNeed(offset, t->size_bytes);
    return prepared;
  }

 private:
  const GgufFile& file_;
  uint64_t* bytes_;
  ShardOptions options_;
  std::vector<std::vector<float>>& vectors_;  // owned by the shard; inner buffers never move
};

}  // namespace

absl::StatusOr<std::unique_ptr<ModelShard>> ModelShard::Load(std::shared_ptr<const GgufFile> file,
                                                             LayerRange range,
                                                             ShardOptions options) {
  std::unique_ptr<ModelShard> shard(new ModelShard());
  shard->file_ = file;
  TANDEM_ASSIGN_OR_RETURN(shard->hparams_, ReadHparams(*file));
  const Hparams& h = shard->hparams_;
  if (range.layer_first < 0 || range.layer_last > h.n_layer ||
      range.layer_first >= range.layer_last) {
    return absl::InvalidArgumentError(absl::StrCat("layer range [", range.layer_first, ", ",
                                                   range.layer_last, ") is not within the model's ",
                                                   h.n_layer, " layers"));
  }
  shard->range_ = range;
  ShardLoader load(*file, &shard->weight_bytes_, options, shard->vectors_);
  const int64_t n_embd = h.n_embd, n_kv = h.n_embd_kv(), n_ff = h.n_ff;

  if (const GgufTensor* freqs = file->FindTensor("rope_freqs.weight")) {
    TANDEM_ASSIGN_OR_RETURN(shard->rope_freqs_, load.Vector("rope_freqs.weight", h.n_rot / 2));
    (void)freqs;
  }
  if (shard->has_embedding()) {
    TANDEM_ASSIGN_OR_RETURN(shard->token_embd_,
                            load.Matrix("token_embd.weight", h.n_vocab, n_embd));
  }
  for (int i = range.layer_first; i < range.layer_last; ++i) {
    const std::string p = absl::StrCat("blk.", i, ".");
    LayerWeights w;
    TANDEM_ASSIGN_OR_RETURN(w.attn_norm, load.Vector(p + "attn_norm.weight", n_embd));
    TANDEM_ASSIGN_OR_RETURN(w.wq, load.Matrix(p + "attn_q.weight", n_embd, n_embd));
    TANDEM_ASSIGN_OR_RETURN(w.wk, load.Matrix(p + "attn_k.weight", n_kv, n_embd));
    TANDEM_ASSIGN_OR_RETURN(w.wv, load.Matrix(p + "attn_v.weight", n_kv, n_embd));
    TANDEM_ASSIGN_OR_RETURN(w.wo, load.Matrix(p + "attn_output.weight", n_embd, n_embd));
    TANDEM_ASSIGN_OR_RETURN(w.ffn_norm, load.Vector(p + "ffn_norm.weight", n_embd));
    TANDEM_ASSIGN_OR_RETURN(w.w_gate, load.Matrix(p + "ffn_gate.weight", n_ff, n_embd));
    TANDEM_ASSIGN_OR_RETURN(w.w_up, load.Matrix(p + "ffn_up.weight", n_ff, n_embd));
    TANDEM_ASSIGN_OR_RETURN(w.w_down, load.Matrix(p + "ffn_down.weight", n_embd, n_ff));
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
