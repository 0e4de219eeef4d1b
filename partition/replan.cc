#include "partition/replan.h"

#include <cmath>
#include <numeric>
#include <optional>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "partition/cost_model.h"
#include "partition/planner.h"
#include "partition/stage_search.h"

namespace tandem::partition {
namespace {

int CountMoved(const Plan& plan, const std::vector<int>& previous_owner) {
  int moved = 0;
  for (const Stage& stage : plan.stages) {
    for (int l = stage.layer_first; l < stage.layer_last; ++l) {
      if (previous_owner[l] != stage.node_index) ++moved;
    }
  }
  return moved;
}

const char* ObjectiveUnit(Objective objective) {
  return objective == Objective::kLatency ? "s/token" : "s bottleneck";
}

}  // namespace

absl::StatusOr<ReplanResult> Replan(const Plan& previous, const ModelProfile& model,
                                    const std::vector<NodeProfile>& nodes,
                                    const Requirements& requirements,
                                    const ReplanOptions& options) {
  if (!std::isfinite(options.hysteresis) || options.hysteresis < 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("hysteresis must be a finite number >= 0, got %g", options.hysteresis));
  }
  absl::StatusOr<CostModel> cost = CostModel::Create(model, nodes, requirements);
  if (!cost.ok()) return cost.status();
  absl::StatusOr<Plan> best = FindPlan(*cost);
  if (!best.ok()) return best.status();

  const int layers = cost->num_layers();
  const Objective objective = requirements.objective;
  absl::flat_hash_map<std::string, int> index_by_name;
  for (int j = 0; j < cost->num_nodes(); ++j) index_by_name[nodes[j].name] = j;

  // The previous plan in the new cluster's node indices.
  std::vector<int> previous_owner(layers, -1);
  std::vector<StageRange> previous_ranges;
  bool all_nodes_present = true;
  for (const Stage& stage : previous.stages) {
    const auto it = index_by_name.find(stage.node_name);
    if (it == index_by_name.end()) {
      all_nodes_present = false;
      continue;
    }
    previous_ranges.push_back({it->second, stage.layer_first, stage.layer_last});
    for (int l = std::max(stage.layer_first, 0); l < std::min(stage.layer_last, layers); ++l) {
      previous_owner[l] = it->second;
    }
  }

  const double optimum = best->ObjectiveValue();
  const double bound = optimum * (1 + options.hysteresis);
  if (all_nodes_present) {
    absl::StatusOr<Plan> kept = cost->Evaluate(previous_ranges, objective);
    if (kept.ok() && kept->ObjectiveValue() <= bound) {
      ReplanResult result;
      result.reason =
          absl::StrFormat("kept the previous plan: %.6g %s is within %.1f%% of the optimum %.6g %s",
                          kept->ObjectiveValue(), ObjectiveUnit(objective),
                          100 * options.hysteresis, optimum, ObjectiveUnit(objective));
      result.plan = *std::move(kept);
      return result;
    }
  }

  std::optional<SearchResult> fewest_moves;
  if (best->exact && SearchStates(cost->num_nodes(), layers, true) <= kMaxSearchStates) {
    std::vector<int> all(cost->num_nodes());
    std::iota(all.begin(), all.end(), 0);
    SearchSpec spec;
    spec.previous_owner = previous_owner;
    if (objective == Objective::kLatency) {
      spec.max_value = bound;
    } else {
      spec.item_cap = bound;
    }
    fewest_moves = SearchStages(*cost, all, spec);
  }

  ReplanResult result;
  if (fewest_moves.has_value()) {
    absl::StatusOr<Plan> plan = cost->Evaluate(fewest_moves->ranges, objective);
    if (!plan.ok()) {
      return absl::InternalError("re-planner produced an invalid plan: " +
                                 std::string(plan.status().message()));
    }
    result.plan = *std::move(plan);
    result.reason =
        absl::StrFormat("moved the fewest layers among plans within %.1f%% of the optimum %.6g %s",
                        100 * options.hysteresis, optimum, ObjectiveUnit(objective));
  } else {
    result.plan = *std::move(best);
    result.reason = "took the new optimum (cluster too large to minimise moved layers)";
  }
  result.moved_layers = CountMoved(result.plan, previous_owner);
  result.changed = !all_nodes_present || Ranges(result.plan) != previous_ranges;
  return result;
}

}  // namespace tandem::partition
