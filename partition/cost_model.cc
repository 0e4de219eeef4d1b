#include "partition/cost_model.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_format.h"
#include "partition/units.h"

namespace tandem::partition {
namespace {

// Sizes stay far below this so that any sum of a few of them cannot wrap.
constexpr uint64_t kMaxTotalBytes = uint64_t{1} << 62;

absl::Status CheckNonNegative(double value, const std::string& what) {
  if (!std::isfinite(value) || value < 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s must be a finite number >= 0, got %g", what, value));
  }
  return absl::OkStatus();
}

absl::Status CheckPositive(double value, const std::string& what) {
  if (!std::isfinite(value) || value <= 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s must be a finite number > 0, got %g", what, value));
  }
  return absl::OkStatus();
}

// a + b, failing instead of wrapping or passing kMaxTotalBytes.
absl::Status AddBytes(uint64_t& total, uint64_t add, const std::string& what) {
  if (add > kMaxTotalBytes || total > kMaxTotalBytes - add) {
    return absl::InvalidArgumentError(absl::StrFormat("%s is too large (%u bytes)", what, add));
  }
  total += add;
  return absl::OkStatus();
}

absl::Status ValidateModel(const ModelProfile& model) {
  if (model.layers.empty()) return absl::InvalidArgumentError("the model has no layers");
  if (model.layers.size() > 100000) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "the model has %d layers; at most 100000 are supported", model.layers.size()));
  }
  for (size_t i = 0; i < model.layers.size(); ++i) {
    const LayerProfile& layer = model.layers[i];
    const std::string name = absl::StrFormat("layer %d", i);
    if (absl::Status s = CheckNonNegative(layer.flops_per_token, name + " flops_per_token");
        !s.ok())
      return s;
    if (absl::Status s =
            CheckNonNegative(layer.bytes_read_per_token, name + " bytes_read_per_token");
        !s.ok())
      return s;
  }
  for (const auto& [end, name] :
       {std::pair{&model.embedding, "embedding"}, std::pair{&model.head, "head"}}) {
    if (absl::Status s = CheckNonNegative(end->flops_per_token, std::string(name) + " flops");
        !s.ok())
      return s;
    if (absl::Status s =
            CheckNonNegative(end->bytes_read_per_token, std::string(name) + " bytes read");
        !s.ok())
      return s;
  }
  return CheckNonNegative(model.activation_bytes_per_token, "activation_bytes_per_token");
}

absl::Status ValidateNodes(const std::vector<NodeProfile>& nodes) {
  absl::flat_hash_set<std::string> names;
  for (size_t j = 0; j < nodes.size(); ++j) {
    const NodeProfile& node = nodes[j];
    if (node.name.empty()) {
      return absl::InvalidArgumentError(absl::StrFormat("node %d has an empty name", j));
    }
    if (!names.insert(node.name).second) {
      return absl::InvalidArgumentError(
          absl::StrFormat("node name \"%s\" appears more than once", node.name));
    }
    const std::string prefix = absl::StrFormat("node \"%s\": ", node.name);
    if (node.memory_bytes > kMaxTotalBytes) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%smemory_bytes %u is too large", prefix, node.memory_bytes));
    }
    if (absl::Status s = CheckPositive(node.memory_bandwidth, prefix + "memory_bandwidth"); !s.ok())
      return s;
    if (absl::Status s = CheckPositive(node.flops_per_second, prefix + "flops_per_second"); !s.ok())
      return s;
    if (absl::Status s = CheckNonNegative(node.link_rtt_seconds, prefix + "link_rtt_seconds");
        !s.ok())
      return s;
    if (absl::Status s = CheckPositive(node.link_bandwidth, prefix + "link_bandwidth"); !s.ok())
      return s;
    if (absl::Status s = CheckNonNegative(node.fetch_bandwidth, prefix + "fetch_bandwidth");
        !s.ok())
      return s;
  }
  return absl::OkStatus();
}

absl::Status ValidateHeld(const std::vector<NodeProfile>& nodes, size_t n_layers) {
  for (const NodeProfile& node : nodes) {
    if (!node.layers_held.empty() && node.layers_held.size() != n_layers) {
      return absl::InvalidArgumentError(
          absl::StrFormat("node \"%s\": layers_held has %d entries for %d layers", node.name,
                          node.layers_held.size(), n_layers));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateRequirements(const Requirements& requirements) {
  if (requirements.context_length < 0 || requirements.sessions < 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("context length (%d) and sessions (%d) must be >= 0",
                        requirements.context_length, requirements.sessions));
  }
  if (!(requirements.headroom_fraction >= 0 && requirements.headroom_fraction <= 1)) {
    return absl::InvalidArgumentError(absl::StrFormat("headroom fraction must be in [0, 1], got %g",
                                                      requirements.headroom_fraction));
  }
  if (requirements.headroom_bytes > kMaxTotalBytes) {
    return absl::InvalidArgumentError("headroom bytes is too large");
  }
  if (absl::Status s = CheckPositive(requirements.transfer_horizon_tokens, "transfer horizon");
      !s.ok())
    return s;
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<CostModel> CostModel::Create(const ModelProfile& model,
                                            const std::vector<NodeProfile>& nodes,
                                            const Requirements& requirements) {
  if (absl::Status s = ValidateModel(model); !s.ok()) return s;
  if (absl::Status s = ValidateNodes(nodes); !s.ok()) return s;
  if (absl::Status s = ValidateRequirements(requirements); !s.ok()) return s;
  if (absl::Status s = ValidateHeld(nodes, model.layers.size()); !s.ok()) return s;

  CostModel cost;
  cost.num_layers_ = static_cast<int>(model.layers.size());
  cost.model_ = model;
  cost.model_.layers.clear();
  cost.nodes_ = nodes;
  cost.requirements_ = requirements;

  uint64_t positions = 0;
  if (__builtin_mul_overflow(static_cast<uint64_t>(requirements.context_length),
                             static_cast<uint64_t>(requirements.sessions), &positions)) {
    return absl::InvalidArgumentError("context length x sessions overflows");
  }
  cost.kv_positions_ = positions;

  const int n_layers = cost.num_layers_;
  cost.weight_prefix_.assign(n_layers + 1, 0);
  cost.kv_prefix_.assign(n_layers + 1, 0);
  cost.flops_prefix_.assign(n_layers + 1, 0);
  cost.bytes_read_prefix_.assign(n_layers + 1, 0);
  uint64_t weights = 0;
  uint64_t kv = 0;
  for (int i = 0; i < n_layers; ++i) {
    const LayerProfile& layer = model.layers[i];
    uint64_t layer_kv = 0;
    if (__builtin_mul_overflow(layer.kv_bytes_per_token, positions, &layer_kv)) {
      return absl::InvalidArgumentError(absl::StrFormat("layer %d KV reservation overflows", i));
    }
    const std::string name = absl::StrFormat("layer %d", i);
    if (absl::Status s = AddBytes(weights, layer.weight_bytes, name + " weight bytes"); !s.ok())
      return s;
    if (absl::Status s = AddBytes(kv, layer_kv, name + " KV reservation"); !s.ok()) return s;
    cost.weight_prefix_[i + 1] = weights;
    cost.kv_prefix_[i + 1] = kv;
    cost.flops_prefix_[i + 1] = cost.flops_prefix_[i] + layer.flops_per_token;
    cost.bytes_read_prefix_[i + 1] = cost.bytes_read_prefix_[i] + layer.bytes_read_per_token;
  }
  uint64_t everything = weights;
  if (absl::Status s = AddBytes(everything, kv, "KV reservation"); !s.ok()) return s;
  if (absl::Status s = AddBytes(everything, model.embedding.weight_bytes, "embedding bytes");
      !s.ok())
    return s;
  if (absl::Status s = AddBytes(everything, model.head.weight_bytes, "head bytes"); !s.ok())
    return s;

  cost.missing_prefix_.resize(nodes.size());
  for (size_t j = 0; j < nodes.size(); ++j) {
    if (nodes[j].layers_held.empty()) continue;
    std::vector<uint64_t>& prefix = cost.missing_prefix_[j];
    prefix.assign(n_layers + 1, 0);
    for (int i = 0; i < n_layers; ++i) {
      prefix[i + 1] = prefix[i] + (nodes[j].layers_held[i] ? 0 : model.layers[i].weight_bytes);
    }
  }

  for (const NodeProfile& node : nodes) {
    const double fraction_bytes =
        std::floor(requirements.headroom_fraction * static_cast<double>(node.memory_bytes));
    cost.headroom_.push_back(requirements.headroom_bytes + static_cast<uint64_t>(fraction_bytes));
  }

  // Memory grows with `last`, so the feasible ends for (node, first) form a prefix.
  cost.max_last_.assign(nodes.size() * (n_layers + 1), 0);
  for (int j = 0; j < cost.num_nodes(); ++j) {
    for (int first = 0; first <= n_layers; ++first) {
      int last = first;
      while (last < n_layers && cost.Fits(j, first, last + 1)) ++last;
      cost.max_last_[j * (n_layers + 1) + first] = last;
    }
  }
  return cost;
}

uint64_t CostModel::WeightBytes(int first, int last) const {
  uint64_t bytes = weight_prefix_[last] - weight_prefix_[first];
  const bool is_first = first == 0;
  const bool is_last = last == num_layers_;
  if (is_last) bytes += model_.head.weight_bytes;
  if (is_first && !(is_last && model_.head_shares_embedding_weights)) {
    bytes += model_.embedding.weight_bytes;
  }
  return bytes;
}

uint64_t CostModel::KvBytes(int first, int last) const {
  return kv_prefix_[last] - kv_prefix_[first];
}

bool CostModel::Fits(int j, int first, int last) const {
  // Each term is below 2^62 (checked in Create), so the sum cannot wrap.
  return WeightBytes(first, last) + KvBytes(first, last) + headroom_[j] <= nodes_[j].memory_bytes;
}

double CostModel::StageBytesRead(int first, int last) const {
  double bytes = bytes_read_prefix_[last] - bytes_read_prefix_[first];
  if (first == 0) bytes += model_.embedding.bytes_read_per_token;
  if (last == num_layers_) bytes += model_.head.bytes_read_per_token;
  return bytes;
}

double CostModel::StageFlops(int first, int last) const {
  double flops = flops_prefix_[last] - flops_prefix_[first];
  if (first == 0) flops += model_.embedding.flops_per_token;
  if (last == num_layers_) flops += model_.head.flops_per_token;
  return flops;
}

double CostModel::ComputeSeconds(int j, int first, int last) const {
  const NodeProfile& node = nodes_[j];
  return std::max(StageBytesRead(first, last) / node.memory_bandwidth,
                  StageFlops(first, last) / node.flops_per_second);
}

uint64_t CostModel::TransferBytes(int j, int first, int last) const {
  const std::vector<uint64_t>& missing = missing_prefix_[j];
  if (missing.empty()) return 0;
  uint64_t bytes = missing[last] - missing[first];
  const NodeProfile& node = nodes_[j];
  const bool is_first = first == 0;
  const bool is_last = last == num_layers_;
  if (is_last && !node.head_held) bytes += model_.head.weight_bytes;
  if (is_first && !node.embedding_held &&
      !(is_last && model_.head_shares_embedding_weights && !node.head_held)) {
    bytes += model_.embedding.weight_bytes;
  }
  return bytes;
}

double CostModel::TransferSeconds(int j, int first, int last) const {
  const NodeProfile& node = nodes_[j];
  // The rate the node's fetches measured, when it has fetched: it includes what the link
  // leaves out (checking, writing the cache, a --fetch-rate limit).
  const double rate = node.fetch_bandwidth > 0 ? node.fetch_bandwidth : node.link_bandwidth;
  return static_cast<double>(TransferBytes(j, first, last)) / rate;
}

double CostModel::StageSeconds(int j, int first, int last) const {
  const double compute = ComputeSeconds(j, first, last);
  if (missing_prefix_[j].empty()) return compute;
  return compute + TransferSeconds(j, first, last) / requirements_.transfer_horizon_tokens;
}

double CostModel::HopSeconds(int from, int to) const {
  return std::max(nodes_[from].link_rtt_seconds, nodes_[to].link_rtt_seconds) / 2 +
         HopTransferSeconds(from, to);
}

double CostModel::HopTransferSeconds(int from, int to) const {
  return model_.activation_bytes_per_token /
         std::min(nodes_[from].link_bandwidth, nodes_[to].link_bandwidth);
}

double CostModel::CoordinatorLegSeconds(int j) const {
  return nodes_[j].link_rtt_seconds / 2 + kTokenIdBytes / nodes_[j].link_bandwidth;
}

absl::StatusOr<Plan> CostModel::Evaluate(const std::vector<StageRange>& ranges,
                                         Objective objective) const {
  if (ranges.empty()) return absl::FailedPreconditionError("the plan has no stages");
  std::vector<bool> used(nodes_.size(), false);
  int expected_first = 0;
  for (const StageRange& range : ranges) {
    if (range.node_index < 0 || range.node_index >= num_nodes()) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "stage node index %d is not among the %d nodes", range.node_index, num_nodes()));
    }
    const std::string& name = nodes_[range.node_index].name;
    if (used[range.node_index]) {
      return absl::FailedPreconditionError(
          absl::StrFormat("node \"%s\" holds more than one stage", name));
    }
    used[range.node_index] = true;
    if (range.layer_first != expected_first || range.layer_last <= range.layer_first ||
        range.layer_last > num_layers_) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "stage on \"%s\" covers layers [%d, %d); expected a non-empty range starting at %d "
          "within %d layers",
          name, range.layer_first, range.layer_last, expected_first, num_layers_));
    }
    if (!Fits(range.node_index, range.layer_first, range.layer_last)) {
      const uint64_t need = WeightBytes(range.layer_first, range.layer_last) +
                            KvBytes(range.layer_first, range.layer_last) +
                            headroom_[range.node_index];
      return absl::FailedPreconditionError(
          absl::StrFormat("layers [%d, %d) need %s on \"%s\" (with headroom), which has %s",
                          range.layer_first, range.layer_last, FormatGiB(need), name,
                          FormatGiB(nodes_[range.node_index].memory_bytes)));
    }
    expected_first = range.layer_last;
  }
  if (expected_first != num_layers_) {
    return absl::FailedPreconditionError(
        absl::StrFormat("the plan covers layers [0, %d) of %d", expected_first, num_layers_));
  }

  Plan plan;
  plan.objective = objective;
  // Summed in pipeline order, as the planner's search sums, so equal plans get
  // bit-identical predictions.
  double latency = CoordinatorLegSeconds(ranges.front().node_index);
  double bottleneck = 0;
  for (size_t s = 0; s < ranges.size(); ++s) {
    const StageRange& range = ranges[s];
    Stage stage;
    stage.node_index = range.node_index;
    stage.node_name = nodes_[range.node_index].name;
    stage.layer_first = range.layer_first;
    stage.layer_last = range.layer_last;
    stage.weight_bytes = WeightBytes(range.layer_first, range.layer_last);
    stage.kv_bytes = KvBytes(range.layer_first, range.layer_last);
    stage.headroom_bytes = headroom_[range.node_index];
    stage.compute_seconds = ComputeSeconds(range.node_index, range.layer_first, range.layer_last);
    stage.transfer_bytes = TransferBytes(range.node_index, range.layer_first, range.layer_last);
    stage.transfer_seconds = TransferSeconds(range.node_index, range.layer_first, range.layer_last);
    plan.transfer_seconds += stage.transfer_seconds;
    const double stage_seconds =
        StageSeconds(range.node_index, range.layer_first, range.layer_last);
    latency += stage_seconds;
    bottleneck = std::max(bottleneck, stage_seconds);
    if (s + 1 < ranges.size()) {
      latency += HopSeconds(range.node_index, ranges[s + 1].node_index);
      bottleneck =
          std::max(bottleneck, HopTransferSeconds(range.node_index, ranges[s + 1].node_index));
    }
    plan.stages.push_back(std::move(stage));
  }
  latency += CoordinatorLegSeconds(ranges.back().node_index);
  plan.seconds_per_token = latency;
  plan.bottleneck_seconds = bottleneck;
  plan.tokens_per_second =
      bottleneck > 0 ? 1.0 / bottleneck : std::numeric_limits<double>::infinity();
  return plan;
}

}  // namespace tandem::partition
