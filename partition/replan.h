// Re-planning when the cluster changes (a node joins or leaves, measurements
// drift). Moving layers is expensive: the new owner loads weights and rebuilds KV
// caches by replaying every session's history. So a re-plan
//   1. keeps the previous plan, with predictions refreshed, when it is still
//      valid and within `hysteresis` of the new optimum's objective value;
//   2. otherwise, among all plans within `hysteresis` of the optimum, takes the
//      one that moves the fewest layers (a layer moves when the node owning it,
//      matched by name, changes), and among those the best objective.
// Step 2 is an exact search with one more dimension (moved layers); when that is
// too large (see stage_search.h) the new optimum is taken as is.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "partition/plan.h"
#include "partition/profile.h"

namespace tandem::partition {

struct ReplanOptions {
  // Relative margin: a plan whose objective value is at most (1 + hysteresis)
  // times the optimum's counts as good enough. Why 7% and not 5%: if every
  // measurement changes by a factor within [1 - e, 1 + e], every stage and hop
  // time changes by a factor within [1 / (1 + e), 1 / (1 - e)], and so does any
  // plan's value (a sum or max of them). The previous optimum can then be at most
  // (1 + e) / (1 - e) - 1 worse than the new one: 6.2% for e = 3%. A margin above
  // that keeps the plan under any 3% noise, not only typical noise (a 5% margin
  // flips when the old optimum had a near-tie).
  double hysteresis = 0.07;
};

struct ReplanResult {
  Plan plan;
  bool changed = false;  // the stages (nodes or ranges) differ from the previous plan
  int moved_layers = 0;  // layers whose owning node changed
  std::string reason;    // one line for logs
};

// `previous` is matched to `nodes` by node name; stages on nodes that are gone
// count as moved. Errors are those of FindPlan.
absl::StatusOr<ReplanResult> Replan(const Plan& previous, const ModelProfile& model,
                                    const std::vector<NodeProfile>& nodes,
                                    const Requirements& requirements,
                                    const ReplanOptions& options = {});

}  // namespace tandem::partition
