// Plans whose split the operator chose rather than the search: an even split by memory,
// or given layer counts. They are checked and predicted by the same cost model as the
// planner's plans (its overflow checks included), so every policy reports comparable
// numbers.
#pragma once

#include <vector>

#include "absl/status/statusor.h"
#include "partition/cost_model.h"
#include "partition/plan.h"

namespace tandem::partition {

// Every node gets at least one layer; the rest go in proportion to memory, by largest
// remainder (ties to the earlier node). More nodes than layers is an error.
absl::StatusOr<std::vector<int>> EvenSplit(const std::vector<NodeProfile>& nodes, int num_layers);

// Node i holds the next counts[i] layers (0: the node is left out). The counts must add
// up to the model's layers; each stage must fit its node.
absl::StatusOr<Plan> FixedPlan(const CostModel& cost, const std::vector<int>& counts);

}  // namespace tandem::partition
