// The cost model every plan is judged by. All times are per generated token.
//
// Stage compute (roofline): a node running layers [first, last) spends
//   max(bytes_read / memory_bandwidth, flops / flops_per_second)
// where bytes_read and flops sum the stage's layers plus the embedding row (first
// stage) and the output norm + head (last stage). Generation reads every weight
// once per token, so small-batch decoding is usually on the bandwidth side.
//
// Hop between consecutive stages on nodes a -> b: the slower of the two access
// links governs both delay and rate,
//   hop(a, b)      = max(rtt_a, rtt_b) / 2 + activation_bytes / min(link_a, link_b)
//   transfer(a, b) =                         activation_bytes / min(link_a, link_b)
// Coordinator legs: the coordinator sends the token id to the first stage and the
// last stage returns the sampled id, each costing rtt / 2 + 4 bytes / link of that
// stage's node (the coordinator's own link is not modelled).
//
// Latency (seconds per token of one session) =
//   leg(first) + sum(stage compute) + sum(hops) + leg(last).
// Bottleneck = max(stage compute, hop transfer): with many sessions in flight the
// pipeline runs at 1 / bottleneck tokens/s; round-trip delays overlap and drop out.
//
// Transfer: a node without the model file first fetches the weights of its stage that it
// does not hold, taking missing_bytes / fetch_bandwidth once (the rate its fetches
// measured; link_bandwidth until it has fetched). The search and the plan's
// latency and bottleneck count a stage as
//   stage(j, first, last) = compute + transfer / transfer_horizon_tokens,
// so a transfer weighs as much as the per-token time it would cost over that many tokens.
// Nodes that hold every weight (a model file) never pay it, and then the sums above are
// exactly what they were.
//
// Memory of a stage = weights (+ embedding / head at the ends; a tied head matrix
// held once when one node is both ends) + KV reservation (kv_bytes_per_token of
// its layers x context_length x sessions) + headroom; it must not exceed the
// node's memory_bytes.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "partition/plan.h"
#include "partition/profile.h"

namespace tandem::partition {

// Bytes of the token id the last stage returns (and the coordinator forwards).
inline constexpr double kTokenIdBytes = 4;

class CostModel {
 public:
  // Validates the inputs (positive speeds, unique names, sizes that do not
  // overflow); an error names the offending field and value.
  static absl::StatusOr<CostModel> Create(const ModelProfile& model,
                                          const std::vector<NodeProfile>& nodes,
                                          const Requirements& requirements);

  int num_layers() const { return num_layers_; }
  int num_nodes() const { return static_cast<int>(nodes_.size()); }
  const NodeProfile& node(int j) const { return nodes_[j]; }
  const std::vector<NodeProfile>& nodes() const { return nodes_; }
  const Requirements& requirements() const { return requirements_; }

  // Memory of a stage on node j with layers [first, last).
  uint64_t WeightBytes(int first, int last) const;
  uint64_t KvBytes(int first, int last) const;
  uint64_t HeadroomBytes(int j) const { return headroom_[j]; }
  bool Fits(int j, int first, int last) const;
  // The largest `last` with Fits(j, first, last), or `first` when not even one
  // layer fits.
  int MaxLayerLast(int j, int first) const { return max_last_[j * (num_layers_ + 1) + first]; }

  double ComputeSeconds(int j, int first, int last) const;
  // Weights node j lacks for a stage of [first, last), and the time to fetch them.
  uint64_t TransferBytes(int j, int first, int last) const;
  double TransferSeconds(int j, int first, int last) const;
  // A stage's per-token cost in plans: compute plus the amortised transfer.
  double StageSeconds(int j, int first, int last) const;
  double HopSeconds(int from, int to) const;
  double HopTransferSeconds(int from, int to) const;
  double CoordinatorLegSeconds(int j) const;

  // Totals for explanations.
  uint64_t TotalWeightBytes() const { return WeightBytes(0, num_layers_); }
  uint64_t TotalKvBytes() const { return KvBytes(0, num_layers_); }

  // Checks that `ranges` is a valid plan (contiguous from layer 0 to the end, each
  // node at most once, every stage fitting its node) and fills its predictions.
  // An invalid plan is a FailedPrecondition error saying why.
  absl::StatusOr<Plan> Evaluate(const std::vector<StageRange>& ranges, Objective objective) const;

 private:
  CostModel() = default;

  double StageBytesRead(int first, int last) const;
  double StageFlops(int first, int last) const;

  int num_layers_ = 0;
  ModelProfile model_;  // endpoints and flags; layers live in the prefix sums
  std::vector<NodeProfile> nodes_;
  Requirements requirements_;
  uint64_t kv_positions_ = 0;  // context_length * sessions
  // Prefix sums over layers: entry i covers layers [0, i).
  std::vector<uint64_t> weight_prefix_;
  std::vector<uint64_t> kv_prefix_;
  std::vector<double> flops_prefix_;
  std::vector<double> bytes_read_prefix_;
  std::vector<uint64_t> headroom_;  // per node
  // Per node, prefix sums of the weights of layers it lacks (empty: it lacks none).
  std::vector<std::vector<uint64_t>> missing_prefix_;
  std::vector<int> max_last_;  // (node, first) -> MaxLayerLast
};

}  // namespace tandem::partition
