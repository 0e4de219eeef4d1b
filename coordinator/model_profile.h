// The planner's view of a GGUF model: per-layer weight bytes, KV-cache bytes and
// per-token work, plus the embedding and head. Lives with the coordinator, which plans; partition/
// does no I/O.
#pragma once

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
// a layer the model does not have, or a layer without tensors, is an error.
absl::StatusOr<partition::ModelProfile> BuildModelProfile(const GgufFile& file,
                                                          const Hparams& hparams);

}  // namespace tandem
