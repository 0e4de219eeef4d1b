// The partition planner: which nodes run which contiguous layer ranges, in which
// order, to minimise the predicted time per token (Objective::kLatency) or the
// slowest pipeline step (Objective::kThroughput), within every node's memory.
// Costs are those of cost_model.h.
//
// Exactness: the search (stage_search.h) is exact over every ordered subset of
// the nodes and every split of the layers, so it may leave out nodes that would
// only slow the pipeline. It runs when its tables fit kMaxSearchStates, which
// holds up to 16 nodes for small models and about 12 nodes for 80 layers.
// Beyond that the planner is a documented heuristic (Plan::exact is false): it
// searches exactly over the largest node count that fits, taking the fastest
// nodes (time to run the whole model) and, separately, the nodes with the most
// free memory, and keeps the better of the two plans.
//
// Ties: among plans equal within kTieTolerance, fewer stages win, then the
// lower-numbered set of nodes, then nodes in index order (see stage_search.h);
// the same input always gives the same plan. For kThroughput, among plans with the best bottleneck
// the one with the lowest latency is chosen.
#pragma once

#include <vector>

#include "absl/status/statusor.h"
#include "partition/cost_model.h"
#include "partition/plan.h"
#include "partition/profile.h"

namespace tandem::partition {

// Invalid inputs are InvalidArgument; a cluster on which no plan fits is
// ResourceExhausted with ExplainInfeasible's message.
absl::StatusOr<Plan> FindPlan(const ModelProfile& model, const std::vector<NodeProfile>& nodes,
                              const Requirements& requirements);

// The same on an already built cost model (objective from its requirements).
absl::StatusOr<Plan> FindPlan(const CostModel& cost);

}  // namespace tandem::partition
