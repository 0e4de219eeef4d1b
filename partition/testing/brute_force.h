// Reference planner for tests: enumerates every ordered subset of the nodes and
// every composition of the layers into that many non-empty contiguous ranges, and
// keeps every plan the cost model accepts. Exponential; for small instances only.
#pragma once

#include <vector>

#include "partition/cost_model.h"
#include "partition/plan.h"

namespace tandem::partition::testing {

std::vector<Plan> AllValidPlans(const CostModel& cost, Objective objective);

}  // namespace tandem::partition::testing
