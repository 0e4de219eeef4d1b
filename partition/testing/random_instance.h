// Random planning problems for property tests, drawn from a seeded generator so
// every failure reproduces.
#pragma once

#include <random>
#include <vector>

#include "partition/profile.h"

namespace tandem::partition::testing {

struct Instance {
  ModelProfile model;
  std::vector<NodeProfile> nodes;
  Requirements requirements;
};

// 1..max_layers layers and 1..max_nodes nodes with costs on scales where compute,
// round trips and transfers are comparable (so order and node choice matter).
// Some nodes have no free memory, some are copies of another (ties), and memory
// is sometimes too small for any plan.
Instance RandomInstance(std::mt19937& rng, int max_nodes, int max_layers);

// Copy of `nodes` with every measurement multiplied by an independent factor in
// [1 - fraction, 1 + fraction].
std::vector<NodeProfile> WithNoise(const std::vector<NodeProfile>& nodes, double fraction,
                                   std::mt19937& rng);

}  // namespace tandem::partition::testing
