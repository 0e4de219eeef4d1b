#include "partition/testing/brute_force.h"

#include <utility>

namespace tandem::partition::testing {
namespace {

// Extends `stages` (covering [0, first)) with every way to finish the plan.
void Extend(const CostModel& cost, Objective objective, std::vector<bool>& used, int first,
            std::vector<StageRange>& stages, std::vector<Plan>& out) {
  if (first == cost.num_layers()) {
    absl::StatusOr<Plan> plan = cost.Evaluate(stages, objective);
    if (plan.ok()) out.push_back(*std::move(plan));
    return;
  }
  for (int j = 0; j < cost.num_nodes(); ++j) {
    if (used[j]) continue;
    used[j] = true;
    for (int last = first + 1; last <= cost.num_layers(); ++last) {
      stages.push_back({j, first, last});
      Extend(cost, objective, used, last, stages, out);
      stages.pop_back();
    }
    used[j] = false;
  }
}

}  // namespace

std::vector<Plan> AllValidPlans(const CostModel& cost, Objective objective) {
  std::vector<Plan> out;
  std::vector<bool> used(cost.num_nodes(), false);
  std::vector<StageRange> stages;
  Extend(cost, objective, used, 0, stages, out);
  return out;
}

}  // namespace tandem::partition::testing
