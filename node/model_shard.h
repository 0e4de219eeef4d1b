// The weights one node needs for a contiguous range of layers [layer_first, layer_last),
// checked by name and shape at load. Only these tensors are ever touched, so a node's
// resident memory is its shard, not the model. Matrices are prepared once: by default
// copied into huge pages in the kernels' layout, and the mapped file's pages released.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "model/gguf.h"
#include "model/hparams.h"
#include "node/arch/arch.h"
#include "node/kernels/matmul.h"
#include "node/kernels/prepared_matrix.h"
#include "node/weight_loader.h"

namespace tandem {

struct LayerRange {
  int layer_first = 0;
  int layer_last = 0;  // exclusive
  int size() const { return layer_last - layer_first; }
};

// One layer's weights. The optional ones (null / empty) are absent in some architectures.
struct LayerWeights {
  const float* attn_norm = nullptr;       // (n_embd)
  PreparedMatrix wq;                      // (n_embd_q rows, n_embd cols)
  PreparedMatrix wk;                      // (n_embd_kv, n_embd)
  PreparedMatrix wv;                      // (n_embd_kv, n_embd)
  const float* bq = nullptr;              // (n_embd_q), optional
  const float* bk = nullptr;              // (n_embd_kv), optional
  const float* bv = nullptr;              // (n_embd_kv), optional
  PreparedMatrix wo;                      // (n_embd, n_embd_q)
  const float* attn_post_norm = nullptr;  // (n_embd), optional: norm of the attention output
  const float* ffn_norm = nullptr;        // (n_embd)
  PreparedMatrix w_gate;                  // (n_ff, n_embd)
  PreparedMatrix w_up;                    // (n_ff, n_embd)
  PreparedMatrix w_down;                  // (n_embd, n_ff)
  const float* ffn_post_norm = nullptr;   // (n_embd), optional: norm of the feed-forward output
};

class ModelShard {
 public:
  static absl::StatusOr<std::unique_ptr<ModelShard>> Load(std::shared_ptr<const GgufFile> file,
                                                          LayerRange range,
                                                          ShardOptions options = {});
  ModelShard(const ModelShard&) = delete;
  ModelShard& operator=(const ModelShard&) = delete;

  const Hparams& hparams() const { return hparams_; }
  const ArchSpec& arch() const { return arch_; }
  const GgufFile& file() const { return *file_; }
  LayerRange range() const { return range_; }
  bool has_embedding() const { return range_.layer_first == 0; }
  bool has_head() const { return range_.layer_last == hparams_.n_layer; }

  // Absolute layer index in [layer_first, layer_last).
  const LayerWeights& layer(int index) const { return layers_[index - range_.layer_first]; }
  const PreparedMatrix& token_embd() const { return token_embd_; }  // first stage only
  const float* output_norm() const { return output_norm_; }         // last stage only
  const PreparedMatrix& output() const { return output_; }          // last stage only
  const float* rope_freqs() const { return rope_freqs_; }           // (n_rot / 2) or null

  // Bytes of weight data this shard reads.
  uint64_t weight_bytes() const { return weight_bytes_; }

 private:
  ModelShard() = default;
  std::shared_ptr<const GgufFile> file_;
  Hparams hparams_;
  ArchSpec arch_;
  LayerRange range_;
  std::vector<LayerWeights> layers_;
  PreparedMatrix token_embd_;
  const float* output_norm_ = nullptr;
  PreparedMatrix output_;
  const float* rope_freqs_ = nullptr;
  uint64_t weight_bytes_ = 0;
  std::vector<std::vector<float>> vectors_;  // norms, copied out of the mapping
};

}  // namespace tandem
