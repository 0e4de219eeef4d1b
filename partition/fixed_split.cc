#include "partition/fixed_split.h"

#include <algorithm>
#include <numeric>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace tandem::partition {

absl::StatusOr<std::vector<int>> EvenSplit(const std::vector<NodeProfile>& nodes, int num_layers) {
  if (nodes.empty()) return absl::InvalidArgumentError("no nodes to split the layers over");
  if (static_cast<int>(nodes.size()) > num_layers) {
    return absl::InvalidArgumentError(
        absl::StrCat(nodes.size(), " nodes for ", num_layers, " layers: every node needs a layer"));
  }
  double total = 0;
  for (const auto& n : nodes) total += static_cast<double>(n.memory_bytes);
  std::vector<int> counts(nodes.size(), 1);
  const int left = num_layers - static_cast<int>(nodes.size());
  std::vector<std::pair<double, size_t>> remainders;
  for (size_t i = 0; i < nodes.size(); ++i) {
    const double share = total > 0 ? left * static_cast<double>(nodes[i].memory_bytes) / total
                                   : static_cast<double>(left) / nodes.size();
    counts[i] += static_cast<int>(share);
    remainders.push_back({share - static_cast<int>(share), i});
  }
  int assigned = std::accumulate(counts.begin(), counts.end(), 0);
  std::stable_sort(remainders.begin(), remainders.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  for (size_t k = 0; assigned < num_layers; ++k, ++assigned) {
    counts[remainders[k % remainders.size()].second]++;
  }
  return counts;
}

absl::StatusOr<Plan> FixedPlan(const CostModel& cost, const std::vector<int>& counts) {
  if (static_cast<int>(counts.size()) != cost.num_nodes()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the split gives ", counts.size(), " layer counts for ", cost.num_nodes(), " nodes"));
  }
  int64_t sum = 0;
  for (int c : counts) {
    if (c < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("the split ", absl::StrJoin(counts, ","), " has a negative layer count"));
    }
    sum += c;
  }
  if (sum != cost.num_layers()) {
    return absl::InvalidArgumentError(absl::StrCat("the split ", absl::StrJoin(counts, ","),
                                                   " does not add up to the model's ",
                                                   cost.num_layers(), " layers"));
  }
  std::vector<StageRange> ranges;
  int first = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    if (counts[i] == 0) continue;
    ranges.push_back({static_cast<int>(i), first, first + counts[i]});
    first += counts[i];
  }
  absl::StatusOr<Plan> plan = cost.Evaluate(ranges, cost.requirements().objective);
  if (!plan.ok()) return absl::ResourceExhaustedError(plan.status().message());
  return plan;
}

}  // namespace tandem::partition
