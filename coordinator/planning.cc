#include "coordinator/planning.h"

#include <algorithm>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "model/status_macros.h"
#include "partition/cost_model.h"
#include "partition/planner.h"
#include "partition/replan.h"

namespace tandem {

absl::StatusOr<ClusterPlan> MakeClusterPlanFresh(const partition::ModelProfile& model,
                                                 const std::vector<NodeRecord>& nodes,
                                                 const PlanningOptions& options);

partition::NodeProfile ToPartitionProfile(const NodeRecord& node) {
  partition::NodeProfile p;
  p.name = node.id;
  p.memory_bytes = node.profile.memory_bytes();
  p.memory_bandwidth = std::max(1e8, node.profile.bandwidth_gbs() * 1e9);
  p.flops_per_second = std::max(1e8, node.profile.gflops() * 1e9);
  // Measured at registration; a LAN-like default until then.
  p.link_rtt_seconds = node.rtt_ms > 0 ? node.rtt_ms * 1e-3 : 2e-4;
  p.link_bandwidth = 1e9;
  return p;
}

namespace {

// Memory a contiguous range needs on a node, as the planner counts it.
uint64_t RangeMemory(const partition::ModelProfile& m, const partition::Requirements& r, int first,
                     int last) {
  uint64_t bytes = 0;
  for (int i = first; i < last; ++i) {
    bytes += m.layers[i].weight_bytes +
             m.layers[i].kv_bytes_per_token * static_cast<uint64_t>(r.context_length * r.sessions);
  }
  if (first == 0) bytes += m.embedding.weight_bytes;
  if (last == static_cast<int>(m.layers.size()) &&
      !(first == 0 && m.head_shares_embedding_weights)) {
    bytes += m.head.weight_bytes;
  }
  return bytes;
}

absl::StatusOr<ClusterPlan> FixedPlan(const partition::ModelProfile& m,
                                      const std::vector<NodeRecord>& nodes,
                                      const std::vector<int>& counts,
                                      const partition::Requirements& r) {
  ClusterPlan plan;
  int first = 0;
  for (size_t i = 0; i < nodes.size(); ++i) {
    if (counts[i] == 0) continue;
    StagePlan s{nodes[i], first, first + counts[i], RangeMemory(m, r, first, first + counts[i])};
    if (s.memory_bytes > nodes[i].profile.memory_bytes()) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "node ", nodes[i].id, " would need ", s.memory_bytes / 1048576.0, " MiB for layers [",
          s.layer_first, ", ", s.layer_last, ") but offers ",
          nodes[i].profile.memory_bytes() / 1048576.0, " MiB"));
    }
    plan.stages.push_back(s);
    first += counts[i];
  }
  return plan;
}

// Copies a partition plan's predictions onto the cluster plan with the same stages.
void CopyPredictions(const partition::Plan& p, ClusterPlan& plan) {
  plan.predicted_seconds_per_token = p.seconds_per_token;
  plan.predicted_tokens_per_second = p.tokens_per_second;
  for (size_t i = 0; i < plan.stages.size() && i < p.stages.size(); ++i) {
    plan.stages[i].weight_bytes = p.stages[i].weight_bytes;
    plan.stages[i].kv_bytes = p.stages[i].kv_bytes;
    plan.stages[i].compute_seconds = p.stages[i].compute_seconds;
  }
}

// A plan the operator chose (even, manual) judged by the same cost model as the
// planner's. FixedPlan has checked memory without headroom, so the evaluation does too;
// a plan the model cannot judge keeps zero predictions rather than failing.
void PredictFixedPlan(const partition::ModelProfile& model, const std::vector<NodeRecord>& nodes,
                      partition::Requirements requirements, ClusterPlan& plan) {
  requirements.headroom_bytes = 0;
  requirements.headroom_fraction = 0;
  std::vector<partition::NodeProfile> profiles;
  for (const auto& n : nodes) profiles.push_back(ToPartitionProfile(n));
  absl::StatusOr<partition::CostModel> cost =
      partition::CostModel::Create(model, profiles, requirements);
  if (!cost.ok()) return;
  std::vector<partition::StageRange> ranges;
  for (const StagePlan& st : plan.stages) {
    const auto it = std::find_if(nodes.begin(), nodes.end(),
                                 [&](const NodeRecord& n) { return n.id == st.node.id; });
    ranges.push_back({static_cast<int>(it - nodes.begin()), st.layer_first, st.layer_last});
  }
  absl::StatusOr<partition::Plan> p = cost->Evaluate(ranges, requirements.objective);
  if (p.ok()) CopyPredictions(*p, plan);
}

}  // namespace

namespace {
bool SameStages(const ClusterPlan& a, const ClusterPlan& b) {
  if (a.stages.size() != b.stages.size()) return false;
  for (size_t i = 0; i < a.stages.size(); ++i) {
    if (a.stages[i].node.id != b.stages[i].node.id ||
        a.stages[i].layer_first != b.stages[i].layer_first ||
        a.stages[i].layer_last != b.stages[i].layer_last) {
      return false;
    }
  }
  return true;
}
}  // namespace

absl::StatusOr<ClusterPlan> MakeClusterPlan(const partition::ModelProfile& model,
                                            const std::vector<NodeRecord>& nodes,
                                            const PlanningOptions& options,
                                            const ClusterPlan* previous) {
  if (options.policy == PlanPolicy::kOptimal && previous && !previous->partition_plan.stages.empty()) {
    std::vector<partition::NodeProfile> profiles;
    for (const auto& n : nodes) profiles.push_back(ToPartitionProfile(n));
    TANDEM_ASSIGN_OR_RETURN(partition::ReplanResult r,
                            partition::Replan(previous->partition_plan, model, profiles,
                                              options.requirements));
    ClusterPlan plan;
    plan.partition_plan = r.plan;
    plan.changed = r.changed;
    plan.reason = r.reason;
    for (const auto& s : r.plan.stages) {
      plan.stages.push_back({nodes[s.node_index], s.layer_first, s.layer_last, s.weight_bytes + s.kv_bytes});
    }
    CopyPredictions(r.plan, plan);  // after the stages: it fills them too
    return plan;
  }
  TANDEM_ASSIGN_OR_RETURN(ClusterPlan plan, MakeClusterPlanFresh(model, nodes, options));
  if (previous) plan.changed = !SameStages(plan, *previous);
  return plan;
}

absl::StatusOr<ClusterPlan> MakeClusterPlanFresh(const partition::ModelProfile& model,
                                                 const std::vector<NodeRecord>& nodes,
                                                 const PlanningOptions& options) {
  const int n_layers = static_cast<int>(model.layers.size());
  if (nodes.empty()) return absl::UnavailableError("no live nodes");
  switch (options.policy) {
    case PlanPolicy::kManual: {
      if (options.layer_counts.size() != nodes.size()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "the split gives ", options.layer_counts.size(), " layer counts for ", nodes.size(),
            " nodes"));
      }
      int sum = std::accumulate(options.layer_counts.begin(), options.layer_counts.end(), 0);
      if (sum != n_layers || *std::min_element(options.layer_counts.begin(), options.layer_counts.end()) < 0) {
        return absl::InvalidArgumentError(absl::StrCat("the split ", absl::StrJoin(options.layer_counts, ","),
                                                       " does not add up to the model's ", n_layers, " layers"));
      }
      TANDEM_ASSIGN_OR_RETURN(ClusterPlan plan,
                              FixedPlan(model, nodes, options.layer_counts, options.requirements));
      PredictFixedPlan(model, nodes, options.requirements, plan);
      return plan;
    }
    case PlanPolicy::kEven: {
      if (static_cast<int>(nodes.size()) > n_layers) {
        return absl::InvalidArgumentError(absl::StrCat(nodes.size(), " nodes for ", n_layers,
                                                       " layers: every node needs a layer"));
      }
      // Largest remainder on memory shares, at least one layer each.
      double total = 0;
      for (const auto& n : nodes) total += static_cast<double>(n.profile.memory_bytes());
      std::vector<int> counts(nodes.size(), 1);
      int left = n_layers - static_cast<int>(nodes.size());
      std::vector<std::pair<double, size_t>> remainders;
      for (size_t i = 0; i < nodes.size(); ++i) {
        double share = total > 0 ? left * nodes[i].profile.memory_bytes() / total
                                 : static_cast<double>(left) / nodes.size();
        counts[i] += static_cast<int>(share);
        remainders.push_back({share - static_cast<int>(share), i});
      }
      int assigned = std::accumulate(counts.begin(), counts.end(), 0);
      std::stable_sort(remainders.begin(), remainders.end(),
                       [](auto& a, auto& b) { return a.first > b.first; });
      for (size_t k = 0; assigned < n_layers; ++k, ++assigned) counts[remainders[k % remainders.size()].second]++;
      TANDEM_ASSIGN_OR_RETURN(ClusterPlan plan,
                              FixedPlan(model, nodes, counts, options.requirements));
      PredictFixedPlan(model, nodes, options.requirements, plan);
      return plan;
    }
    case PlanPolicy::kOptimal: {
      std::vector<partition::NodeProfile> profiles;
      for (const auto& n : nodes) profiles.push_back(ToPartitionProfile(n));
      TANDEM_ASSIGN_OR_RETURN(partition::Plan p,
                              partition::FindPlan(model, profiles, options.requirements));
      ClusterPlan plan;
      for (const auto& s : p.stages) {
        plan.stages.push_back({nodes[s.node_index], s.layer_first, s.layer_last,
                               s.weight_bytes + s.kv_bytes});
      }
      CopyPredictions(p, plan);
      plan.partition_plan = p;
      return plan;
    }
  }
  return absl::InternalError("unknown plan policy");
}

}  // namespace tandem
