// The planner's view of a GGUF model: per-layer weight bytes, KV-cache bytes and
// per-token work, plus the embedding and head. Lives with the coordinator, which plans; partition/
// does no I/O.
#pragma once

#include <cstddef>

#include "absl/status/statusor.h"
#include "model/gguf.h"
#include "model/hparams.h"
#include "partition/profile.h"

namespace tandem {

// Layer i is every tensor named "blk.<i>.*": its bytes are held and read once per
// generated token, at 2 flops per weight element. KV bytes per token follow the
// node's cache (node/kv_cache.h). The first stage holds token_embd.weight but reads
// one row per token; the last holds output_norm.weight and output.weight, or
// reuses token_embd.weight when there is no output.weight (tied). A tensor naming
// a layer the model does not have, or a layer without tensors, is an error. Activations
// between stages cost n_embd x wire_bytes_per_value bytes per token (4 for f32, 2 for f16).
absl::StatusOr<partition::ModelProfile> BuildModelProfile(const GgufFile& file,
                                                          const Hparams& hparams,
                                                          size_t wire_bytes_per_value);

}  // namespace tandem
