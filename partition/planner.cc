#include "partition/planner.h"

#include <algorithm>
#include <numeric>
#include <optional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "partition/infeasibility.h"
#include "partition/stage_search.h"

namespace tandem::partition {
namespace {

// The largest node count whose search fits kMaxSearchStates.
int MaxExactCandidates(int num_nodes, int num_layers) {
  int k = std::min(num_nodes, 31);
  while (k > 1 && SearchStates(k, num_layers, /*track_moved=*/false) > kMaxSearchStates) --k;
  return k;
}

// Node indices ordered by `less`, first `count` kept, then sorted by index so the
// search's tie order stays by index.
template <typename Less>
std::vector<int> TopNodes(int num_nodes, int count, Less less) {
  std::vector<int> order(num_nodes);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), less);
  order.resize(count);
  std::sort(order.begin(), order.end());
  return order;
}

// Best plan on `candidates` for the objective, as ranges plus its value.
std::optional<SearchResult> SearchObjective(const CostModel& cost,
                                            const std::vector<int>& candidates) {
  if (cost.requirements().objective == Objective::kLatency) {
    return SearchStages(cost, candidates, SearchSpec{});
  }
  SearchSpec bottleneck;
  bottleneck.value = SearchSpec::Value::kBottleneck;
  std::optional<SearchResult> best = SearchStages(cost, candidates, bottleneck);
  if (!best.has_value()) return std::nullopt;
  // Among plans as fast in the pipeline, the one quickest for a single session.
  SearchSpec latency;
  latency.item_cap = best->value;
  std::optional<SearchResult> refined = SearchStages(cost, candidates, latency);
  if (refined.has_value()) refined->value = best->value;
  return refined.has_value() ? refined : best;
}

}  // namespace

absl::StatusOr<Plan> FindPlan(const ModelProfile& model, const std::vector<NodeProfile>& nodes,
                              const Requirements& requirements) {
  absl::StatusOr<CostModel> cost = CostModel::Create(model, nodes, requirements);
  if (!cost.ok()) return cost.status();
  return FindPlan(*cost);
}

absl::StatusOr<Plan> FindPlan(const CostModel& cost) {
  const int n = cost.num_nodes();
  const int layers = cost.num_layers();
  const Objective objective = cost.requirements().objective;

  std::optional<SearchResult> best;
  bool exact = true;
  if (n > 0 && SearchStates(n, layers, false) <= kMaxSearchStates) {
    std::vector<int> all(n);
    std::iota(all.begin(), all.end(), 0);
    best = SearchObjective(cost, all);
  } else if (n > 0) {
    exact = false;
    const int count = MaxExactCandidates(n, layers);
    const std::vector<int> fastest = TopNodes(n, count, [&](int a, int b) {
      return cost.ComputeSeconds(a, 0, layers) < cost.ComputeSeconds(b, 0, layers);
    });
    const std::vector<int> roomiest = TopNodes(n, count, [&](int a, int b) {
      return cost.node(a).memory_bytes -
                 std::min(cost.node(a).memory_bytes, cost.HeadroomBytes(a)) >
             cost.node(b).memory_bytes - std::min(cost.node(b).memory_bytes, cost.HeadroomBytes(b));
    });
    for (const std::vector<int>* candidates : {&fastest, &roomiest}) {
      std::optional<SearchResult> found = SearchObjective(cost, *candidates);
      if (found.has_value() && (!best.has_value() || Better(found->value, best->value))) {
        best = std::move(found);
      }
    }
  }
  if (!best.has_value()) {
    std::string reason = ExplainInfeasible(cost);
    if (!exact) {
      reason += absl::StrFormat(" (too many nodes for the exact search: tried subsets of %d of %d)",
                                MaxExactCandidates(n, layers), n);
    }
    return absl::ResourceExhaustedError(reason);
  }

  absl::StatusOr<Plan> plan = cost.Evaluate(best->ranges, objective);
  if (!plan.ok())
    return absl::InternalError("planner produced an invalid plan: " +
                               std::string(plan.status().message()));
  plan->exact = exact;
  return plan;
}

}  // namespace tandem::partition
