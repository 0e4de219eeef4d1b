// Small hand-made models and nodes for the planner's scenario tests.
#pragma once

#include <cstdint>
#include <string>

#include "partition/profile.h"

namespace tandem::partition::testing {

inline constexpr uint64_t kGiB = uint64_t{1} << 30;

// `num_layers` identical layers of `layer_bytes`, each read once per token with
// 2 flops per byte; no embedding or head cost, 16 KiB activations, no KV.
ModelProfile UniformModel(int num_layers, uint64_t layer_bytes);

// A node with `memory_bytes`, bandwidth-bound at `bandwidth` bytes/s, a 1 ms
// round trip and a 1 Gbit/s link.
NodeProfile SimpleNode(std::string name, uint64_t memory_bytes, double bandwidth);

}  // namespace tandem::partition::testing
