// Why no plan fits: a sentence with the numbers an operator needs to fix it.
#pragma once

#include <string>

#include "partition/cost_model.h"

namespace tandem::partition {

// For a cluster on which no plan fits, e.g. "needs 38.2 GiB for weights + 4.0 GiB
// KV cache (context 4096 x 1 session); the 3 nodes offer 30.1 GiB after 1.5 GiB
// headroom". Names the first cause found: total memory, one layer too big for
// every node, or the split itself.
std::string ExplainInfeasible(const CostModel& cost);

}  // namespace tandem::partition
