#include "coordinator/planning.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/status_macros.h"
#include "partition/cost_model.h"
#include "partition/fixed_split.h"
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
  // What its weight fetches measured (0 until it fetched): the transfer term's rate.
  if (node.has_fetch) p.fetch_bandwidth = node.fetch.bytes_per_s();
  if (!node.held.all) {
    p.layers_held = node.held.layers;
    p.embedding_held = node.held.embedding;
    p.head_held = node.held.head;
  }
  return p;
}

namespace {

// Copies a partition plan's stages and predictions onto a cluster plan.
ClusterPlan FromPartitionPlan(const partition::Plan& p, const std::vector<NodeRecord>& nodes) {
  ClusterPlan plan;
  for (const auto& s : p.stages) {
    plan.stages.push_back({nodes[s.node_index], s.layer_first, s.layer_last,
                           s.weight_bytes + s.kv_bytes, s.weight_bytes, s.kv_bytes,
                           s.compute_seconds});
  }
  plan.predicted_seconds_per_token = p.seconds_per_token;
  plan.predicted_tokens_per_second = p.tokens_per_second;
  plan.partition_plan = p;
  return plan;
}

std::vector<partition::NodeProfile> ToPartitionProfiles(const std::vector<NodeRecord>& nodes) {
  std::vector<partition::NodeProfile> profiles;
  for (const auto& n : nodes) profiles.push_back(ToPartitionProfile(n));
  return profiles;
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
  if (options.policy == PlanPolicy::kOptimal && previous &&
      !previous->partition_plan.stages.empty()) {
    TANDEM_ASSIGN_OR_RETURN(partition::ReplanResult r,
                            partition::Replan(previous->partition_plan, model,
                                              ToPartitionProfiles(nodes), options.requirements));
    ClusterPlan plan = FromPartitionPlan(r.plan, nodes);
    plan.changed = r.changed;
    plan.reason = r.reason;
    return plan;
  }
  TANDEM_ASSIGN_OR_RETURN(ClusterPlan plan, MakeClusterPlanFresh(model, nodes, options));
  if (previous) plan.changed = !SameStages(plan, *previous);
  return plan;
}

absl::StatusOr<ClusterPlan> MakeClusterPlanFresh(const partition::ModelProfile& model,
                                                 const std::vector<NodeRecord>& nodes,
                                                 const PlanningOptions& options) {
  if (nodes.empty()) return absl::UnavailableError("no live nodes");
  const std::vector<partition::NodeProfile> profiles = ToPartitionProfiles(nodes);
  if (options.policy == PlanPolicy::kOptimal) {
    TANDEM_ASSIGN_OR_RETURN(partition::Plan p,
                            partition::FindPlan(model, profiles, options.requirements));
    return FromPartitionPlan(p, nodes);
  }
  // The operator chose the split: memory is checked without the optimiser's headroom.
  partition::Requirements requirements = options.requirements;
  requirements.headroom_bytes = 0;
  requirements.headroom_fraction = 0;
  TANDEM_ASSIGN_OR_RETURN(partition::CostModel cost,
                          partition::CostModel::Create(model, profiles, requirements));
  std::vector<int> counts = options.layer_counts;
  if (options.policy == PlanPolicy::kEven) {
    TANDEM_ASSIGN_OR_RETURN(counts, partition::EvenSplit(profiles, cost.num_layers()));
  }
  TANDEM_ASSIGN_OR_RETURN(partition::Plan p, partition::FixedPlan(cost, counts));
  return FromPartitionPlan(p, nodes);
}

}  // namespace tandem
