#include "partition/infeasibility.h"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "partition/units.h"

namespace tandem::partition {
namespace {

uint64_t UsableBytes(const CostModel& cost, int j) {
  const uint64_t memory = cost.node(j).memory_bytes;
  const uint64_t headroom = cost.HeadroomBytes(j);
  return memory > headroom ? memory - headroom : 0;
}

}  // namespace

std::string ExplainInfeasible(const CostModel& cost) {
  const int n = cost.num_nodes();
  const int layers = cost.num_layers();
  const Requirements& req = cost.requirements();
  const uint64_t weights = cost.TotalWeightBytes();
  const uint64_t kv = cost.TotalKvBytes();
  const std::string needs = absl::StrFormat(
      "needs %s for weights + %s KV cache (context %d x %d session%s)", FormatGiB(weights),
      FormatGiB(kv), req.context_length, req.sessions, req.sessions == 1 ? "" : "s");
  if (n == 0) return absl::StrFormat("the model %s; there are no nodes", needs);

  uint64_t usable = 0;
  uint64_t headroom = 0;
  uint64_t largest = 0;
  for (int j = 0; j < n; ++j) {
    usable += UsableBytes(cost, j);
    headroom += std::min(cost.HeadroomBytes(j), cost.node(j).memory_bytes);
    largest = std::max(largest, UsableBytes(cost, j));
  }
  const std::string offer =
      absl::StrFormat("the %d node%s offer%s %s after %s headroom", n, n == 1 ? "" : "s",
                      n == 1 ? "s" : "", FormatGiB(usable), FormatGiB(headroom));
  if (weights + kv > usable) return absl::StrFormat("%s; %s", needs, offer);

  // Each layer must sit whole on one node, with the embedding or head beside it
  // at the ends.
  for (int l = 0; l < layers; ++l) {
    const uint64_t alone = cost.WeightBytes(l, l + 1) + cost.KvBytes(l, l + 1);
    if (alone > largest) {
      const char* extra = l == 0 && l + 1 == layers ? " with the embedding and head"
                          : l == 0                  ? " with the embedding"
                          : l + 1 == layers         ? " with the output head"
                                                    : "";
      return absl::StrFormat(
          "layer %d%s needs %s (weights + KV cache), more than the largest node offers "
          "(%s after headroom); the model %s",
          l, extra, FormatGiB(alone), FormatGiB(largest), needs);
    }
  }

  std::vector<std::string> per_node;
  for (int j = 0; j < n; ++j) {
    per_node.push_back(
        absl::StrFormat("%s %s", cost.node(j).name, FormatGiB(UsableBytes(cost, j))));
  }
  return absl::StrFormat(
      "the model %s and %s in total, but no split into contiguous layer ranges fits the "
      "nodes' free memory (%s)",
      needs, offer, absl::StrJoin(per_node, ", "));
}

}  // namespace tandem::partition
