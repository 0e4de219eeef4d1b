#include "partition/plan.h"

namespace tandem::partition {

std::vector<StageRange> Ranges(const Plan& plan) {
  std::vector<StageRange> ranges;
  ranges.reserve(plan.stages.size());
  for (const Stage& stage : plan.stages) {
    ranges.push_back({stage.node_index, stage.layer_first, stage.layer_last});
  }
  return ranges;
}

}  // namespace tandem::partition
