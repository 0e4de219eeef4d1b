// Turns the live nodes into pipeline stages: with the partition planner, an even split
// by memory, or layer counts the operator gave.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "coordinator/registry.h"
#include "partition/profile.h"

namespace tandem {

enum class PlanPolicy {
  kOptimal,  // the partition planner (may leave slow nodes out)
  kEven,     // every node, layers in proportion to memory
  kManual,   // every node, the given layer counts
};

struct PlanningOptions {
  PlanPolicy policy = PlanPolicy::kOptimal;
  std::vector<int> layer_counts;  // kManual: one per node, in registration order
  partition::Requirements requirements;
};

struct StagePlan {
  NodeRecord node;
  int layer_first = 0;
  int layer_last = 0;
  uint64_t memory_bytes = 0;  // weights + KV reservation
};

struct ClusterPlan {
  std::vector<StagePlan> stages;
  double predicted_seconds_per_token = 0;
};

absl::StatusOr<ClusterPlan> MakeClusterPlan(const partition::ModelProfile& model,
                                            const std::vector<NodeRecord>& nodes,
                                            const PlanningOptions& options);

// partition's view of a registered node.
partition::NodeProfile ToPartitionProfile(const NodeRecord& node);

}  // namespace tandem
