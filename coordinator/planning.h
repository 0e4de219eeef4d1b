// Turns the live nodes into pipeline stages: with the partition planner, an even split
// by memory, or layer counts the operator gave.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "coordinator/registry.h"
#include "partition/plan.h"
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
  // The partition cost model's view, whatever the policy (0 when it cannot judge).
  uint64_t weight_bytes = 0;
  uint64_t kv_bytes = 0;
  double compute_seconds = 0;  // per generated token
};

struct ClusterPlan {
  std::vector<StagePlan> stages;
  // partition::CostModel's predictions from the nodes' measured profiles, for every
  // policy: one session's time per token, and the pipelined many-session rate.
  double predicted_seconds_per_token = 0;
  double predicted_tokens_per_second = 0;
  partition::Plan partition_plan;  // the planner's own form (optimal policy)
  bool changed = true;             // differs from the previous plan
  std::string reason;              // one line for logs
};

// With `previous` (the plan in force), the optimal policy re-plans: it keeps the
// previous plan unless a clearly better one exists, and then prefers plans that move few
// layers (partition/replan.h).
absl::StatusOr<ClusterPlan> MakeClusterPlan(const partition::ModelProfile& model,
                                            const std::vector<NodeRecord>& nodes,
                                            const PlanningOptions& options,
                                            const ClusterPlan* previous = nullptr);

// partition's view of a registered node: the bandwidth and GFLOP/s the node measured at
// registration with its own thread count, and the round trip the coordinator measured.
// On one machine (loopback) hops are cheap but not free: the planner may then put the
// whole model on one node when a hop costs more than splitting the compute saves.
partition::NodeProfile ToPartitionProfile(const NodeRecord& node);

}  // namespace tandem
