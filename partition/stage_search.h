// The exact search behind the planner and the re-planner: dynamic programming over
// (set of nodes used so far, last node, layers assigned so far[, layers moved so
// far]). A stage on node j covering [first, last) extends a state that assigned
// [0, first) and did not use j; the hop cost depends only on the previous stage's
// node, so every ordered node subset and every split into contiguous ranges is
// covered exactly once and the optimum is exact, not approximate.
//
// Cost: O(2^N * N * L * (N + L)) time and 2^N * N * (L + 1) states for N nodes and
// L layers (times L + 1 when moved layers are tracked).
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <vector>

#include "partition/cost_model.h"
#include "partition/plan.h"

namespace tandem::partition {

// Above this many states (about 48 MiB of tables) callers fall back; see planner.h.
inline constexpr uint64_t kMaxSearchStates = uint64_t{1} << 22;

// Relative difference under which two values count as tied. Ties go to fewer
// stages, then the lower-numbered set of nodes, then nodes in index order, then a
// fixed enumeration order of the layer boundaries, so a plan never flips on
// rounding noise and the same input always gives the same plan.
inline constexpr double kTieTolerance = 1e-12;

// Strictly better by more than the tie tolerance.
bool Better(double a, double b);

struct SearchSpec {
  enum class Value {
    kLatency,     // CostModel's seconds per token (sum)
    kBottleneck,  // max of stage compute and hop transfer times
  };
  Value value = Value::kLatency;
  // Stages whose compute time, and hops whose transfer time, exceed this are
  // not allowed.
  double item_cap = std::numeric_limits<double>::infinity();
  // When non-empty: for each layer, the index (into the CostModel's nodes) of its
  // previous owner, or -1. The search then returns the plan with the fewest moved
  // layers (owner differs) among those whose value is <= max_value, and among
  // those the best value.
  std::vector<int> previous_owner;
  double max_value = std::numeric_limits<double>::infinity();
};

struct SearchResult {
  std::vector<StageRange> ranges;  // node_index into the CostModel's nodes
  double value = 0;
  int moved_layers = 0;  // 0 unless previous_owner was given
};

uint64_t SearchStates(int num_candidates, int num_layers, bool track_moved);

// Searches stages on the nodes `candidates` (indices into cost's nodes, at most
// 31 of them and within kMaxSearchStates). nullopt when nothing satisfies memory,
// the cap and max_value.
std::optional<SearchResult> SearchStages(const CostModel& cost, const std::vector<int>& candidates,
                                         const SearchSpec& spec);

}  // namespace tandem::partition
