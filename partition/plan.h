// What the planner returns: an ordered pipeline of stages and its predicted cost.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "partition/profile.h"

namespace tandem::partition {

struct Stage {
  int node_index = 0;  // into the NodeProfile list the plan was made for
  std::string node_name;
  int layer_first = 0;
  int layer_last = 0;  // exclusive
  // Memory the stage's node must hold.
  uint64_t weight_bytes = 0;    // layers, plus embedding / head at the ends
  uint64_t kv_bytes = 0;        // reservation for context x sessions
  uint64_t headroom_bytes = 0;  // left free on purpose
  double compute_seconds = 0;   // per generated token (roofline, see cost_model.h)
  uint64_t transfer_bytes = 0;  // weights the node must fetch first
  double transfer_seconds = 0;  // ... at its link bandwidth

  int num_layers() const { return layer_last - layer_first; }
  uint64_t memory_bytes() const { return weight_bytes + kv_bytes + headroom_bytes; }
};

struct Plan {
  std::vector<Stage> stages;  // in pipeline order; layers contiguous from 0
  Objective objective = Objective::kLatency;
  double seconds_per_token = 0;   // one session, one token: the latency objective
  double bottleneck_seconds = 0;  // slowest stage or hop transfer
  double tokens_per_second = 0;   // pipelined many-session limit: 1 / bottleneck
  double transfer_seconds = 0;    // every stage's weight transfer, one after another
  // False when the cluster was too large for the exact search and a heuristic
  // chose which nodes to consider (see planner.h).
  bool exact = true;

  // The value the objective minimises: seconds_per_token or bottleneck_seconds.
  double ObjectiveValue() const {
    return objective == Objective::kLatency ? seconds_per_token : bottleneck_seconds;
  }
};

// Range form of a plan, without predictions: what a search or a caller proposes.
struct StageRange {
  int node_index = 0;
  int layer_first = 0;
  int layer_last = 0;  // exclusive

  bool operator==(const StageRange&) const = default;
};

std::vector<StageRange> Ranges(const Plan& plan);

}  // namespace tandem::partition
