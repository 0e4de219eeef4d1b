#include "partition/replan.h"

#include <algorithm>
#include <limits>
#include <random>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "partition/cost_model.h"
#include "partition/planner.h"
#include "partition/testing/brute_force.h"
#include "partition/testing/builders.h"
#include "partition/testing/random_instance.h"

namespace tandem::partition {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::kGiB;
using testing::SimpleNode;
using testing::UniformModel;

Requirements NoKv(Objective objective = Objective::kLatency) {
  Requirements req;
  req.context_length = 0;
  req.objective = objective;
  return req;
}

// Four different nodes, none of which holds the 12-layer model (3 GiB) alone;
// 10% spare memory each, so that memory noise does not decide the plan.
std::vector<NodeProfile> Cluster() {
  return {SimpleNode("desk", 22 * kGiB / 10, 3e10), SimpleNode("laptop", 11 * kGiB / 10, 1.5e10),
          SimpleNode("nas", 16 * kGiB / 10, 8e9), SimpleNode("mini", 11 * kGiB / 10, 2e10)};
}

TEST(ReplanTest, SameClusterKeepsThePlan) {
  const ModelProfile model = UniformModel(12, kGiB / 4);
  absl::StatusOr<Plan> plan = FindPlan(model, Cluster(), NoKv());
  ASSERT_TRUE(plan.ok()) << plan.status();
  absl::StatusOr<ReplanResult> result = Replan(*plan, model, Cluster(), NoKv());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_FALSE(result->changed);
  EXPECT_EQ(result->moved_layers, 0);
  EXPECT_EQ(Ranges(result->plan), Ranges(*plan));
  EXPECT_THAT(result->reason, HasSubstr("kept"));
}

TEST(ReplanTest, MeasurementNoiseOfThreePercentDoesNotChangeThePlan) {
  const ModelProfile model = UniformModel(12, kGiB / 4);
  for (Objective objective : {Objective::kLatency, Objective::kThroughput}) {
    absl::StatusOr<Plan> plan = FindPlan(model, Cluster(), NoKv(objective));
    ASSERT_TRUE(plan.ok()) << plan.status();
    ASSERT_GT(plan->stages.size(), 1u);
    std::mt19937 rng(42);
    int optimum_moved = 0;
    for (int trial = 0; trial < 200; ++trial) {
      const std::vector<NodeProfile> noisy = testing::WithNoise(Cluster(), 0.03, rng);
      absl::StatusOr<ReplanResult> result = Replan(*plan, model, noisy, NoKv(objective));
      ASSERT_TRUE(result.ok()) << result.status();
      EXPECT_FALSE(result->changed) << "trial " << trial << ": " << result->reason;
      EXPECT_EQ(Ranges(result->plan), Ranges(*plan));
      // Without hysteresis the noise would move layers now and then; check the
      // test is not vacuous.
      absl::StatusOr<Plan> fresh = FindPlan(model, noisy, NoKv(objective));
      ASSERT_TRUE(fresh.ok());
      optimum_moved += Ranges(*fresh) != Ranges(*plan);
    }
    EXPECT_GT(optimum_moved, 0);
  }
}

TEST(ReplanTest, LostNodesLayersAreReassignedAndTheRestStay) {
  const ModelProfile model = UniformModel(8, kGiB / 4);
  // Each node holds at most 4 layers, so the plan needs two of them.
  std::vector<NodeProfile> nodes = {SimpleNode("a", kGiB, 2e10), SimpleNode("b", kGiB, 2e10),
                                    SimpleNode("c", kGiB, 2e10)};
  absl::StatusOr<Plan> plan = FindPlan(model, nodes, NoKv());
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_THAT(Ranges(*plan), ElementsAre(StageRange{0, 0, 4}, StageRange{1, 4, 8}));

  // "a" leaves; "b" keeps layers 4..8 and "c" takes a's four.
  const std::vector<NodeProfile> without_a = {nodes[1], nodes[2]};
  absl::StatusOr<ReplanResult> result = Replan(*plan, model, without_a, NoKv());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->changed);
  EXPECT_EQ(result->moved_layers, 4);
  ASSERT_EQ(result->plan.stages.size(), 2u);
  EXPECT_EQ(result->plan.stages[0].node_name, "c");
  EXPECT_EQ(result->plan.stages[0].layer_last, 4);
  EXPECT_EQ(result->plan.stages[1].node_name, "b");
  EXPECT_EQ(result->plan.stages[1].layer_first, 4);
}

TEST(ReplanTest, LostNodeWithoutSpareCapacityMovesTheFewestLayers) {
  const ModelProfile model = UniformModel(9, kGiB / 4);
  // a, b, c hold 3 layers each; when c leaves, d (6 layers) must take c's layers
  // and one more node's, and the plan keeps whichever of a, b it can.
  const std::vector<NodeProfile> nodes = {SimpleNode("a", 3 * kGiB / 4, 2e10),
                                          SimpleNode("b", 3 * kGiB / 4, 2e10),
                                          SimpleNode("c", 3 * kGiB / 4, 2e10)};
  absl::StatusOr<Plan> plan = FindPlan(model, nodes, NoKv());
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->stages.size(), 3u);
  const std::vector<NodeProfile> next = {nodes[0], nodes[1], SimpleNode("d", 3 * kGiB / 2, 2e10)};
  absl::StatusOr<ReplanResult> result = Replan(*plan, model, next, NoKv());
  ASSERT_TRUE(result.ok()) << result.status();
  // All three-stage plans cost the same as two-stage ones up to one hop, which is
  // within the margin here, so only c's 3 layers move.
  EXPECT_EQ(result->moved_layers, 3);
  for (const Stage& stage : result->plan.stages) {
    if (stage.node_name == "a" || stage.node_name == "b") {
      const Stage& before = plan->stages[stage.node_name == "a" ? 0 : 1];
      EXPECT_EQ(stage.layer_first, before.layer_first);
      EXPECT_EQ(stage.layer_last, before.layer_last);
    }
  }
}

TEST(ReplanTest, SimilarNodeJoiningIsIgnoredButAMuchFasterOneIsUsed) {
  const ModelProfile model = UniformModel(12, kGiB / 4);
  absl::StatusOr<Plan> plan = FindPlan(model, Cluster(), NoKv());
  ASSERT_TRUE(plan.ok()) << plan.status();

  std::vector<NodeProfile> joined = Cluster();
  joined.push_back(SimpleNode("twin", 11 * kGiB / 10, 1.5e10));  // like "laptop"
  absl::StatusOr<ReplanResult> result = Replan(*plan, model, joined, NoKv());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_FALSE(result->changed) << result->reason;

  joined.push_back(SimpleNode("workstation", 4 * kGiB, 9e10));
  result = Replan(*plan, model, joined, NoKv());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->changed);
  EXPECT_GT(result->moved_layers, 0);
  EXPECT_THAT(result->plan.stages,
              ::testing::Contains(::testing::Field(&Stage::node_name, "workstation")));
  absl::StatusOr<CostModel> cost = CostModel::Create(model, joined, NoKv());
  ASSERT_TRUE(cost.ok());
  absl::StatusOr<Plan> old_in_new = cost->Evaluate(Ranges(*plan), Objective::kLatency);
  ASSERT_TRUE(old_in_new.ok());
  EXPECT_LT(result->plan.seconds_per_token,
            old_in_new->seconds_per_token / (1 + ReplanOptions{}.hysteresis));
}

TEST(ReplanTest, BigSpeedChangeMovesLayers) {
  const ModelProfile model = UniformModel(12, kGiB / 4);
  absl::StatusOr<Plan> plan = FindPlan(model, Cluster(), NoKv());
  ASSERT_TRUE(plan.ok()) << plan.status();
  std::vector<NodeProfile> changed = Cluster();
  for (NodeProfile& node : changed) {
    if (node.name == "desk") node.memory_bandwidth /= 4;  // someone else is busy on it
  }
  absl::StatusOr<ReplanResult> result = Replan(*plan, model, changed, NoKv());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->changed);
  EXPECT_GT(result->moved_layers, 0);
}

TEST(ReplanTest, InfeasibleNewClusterIsAnErrorWithNumbers) {
  const ModelProfile model = UniformModel(12, kGiB / 4);
  absl::StatusOr<Plan> plan = FindPlan(model, Cluster(), NoKv());
  ASSERT_TRUE(plan.ok()) << plan.status();
  absl::StatusOr<ReplanResult> result = Replan(*plan, model, {Cluster()[0]}, NoKv());
  ASSERT_EQ(result.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(result.status().message(), HasSubstr("needs 3.0 GiB for weights"));
}

TEST(ReplanTest, NegativeHysteresisIsRejected) {
  const ModelProfile model = UniformModel(2, kGiB / 4);
  EXPECT_EQ(Replan(Plan{}, model, Cluster(), NoKv(), {.hysteresis = -0.1}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// Against brute force: the result is within the margin of the optimum and moves
// no more layers than any plan within the margin.
TEST(ReplanPropertyTest, FewestMovedLayersAmongNearOptimalPlans) {
  std::mt19937 rng(99);
  int changed = 0;
  int kept = 0;
  for (int i = 0; i < 300; ++i) {
    SCOPED_TRACE(::testing::Message() << "instance " << i);
    testing::Instance before = testing::RandomInstance(rng, 4, 6);
    before.requirements.objective = i % 2 ? Objective::kThroughput : Objective::kLatency;
    absl::StatusOr<Plan> previous = FindPlan(before.model, before.nodes, before.requirements);
    if (!previous.ok()) continue;
    // The same model on a cluster that drifted, maybe lost a node, maybe gained one.
    std::vector<NodeProfile> nodes = testing::WithNoise(before.nodes, 0.3, rng);
    if (nodes.size() > 1 && rng() % 3 == 0) nodes.erase(nodes.begin() + rng() % nodes.size());
    if (rng() % 3 == 0) {
      testing::Instance other = testing::RandomInstance(rng, 1, 1);
      other.nodes[0].name = "joined";
      nodes.push_back(other.nodes[0]);
    }
    absl::StatusOr<CostModel> cost = CostModel::Create(before.model, nodes, before.requirements);
    ASSERT_TRUE(cost.ok()) << cost.status();
    const Objective objective = before.requirements.objective;
    const std::vector<Plan> all = testing::AllValidPlans(*cost, objective);
    absl::StatusOr<ReplanResult> result =
        Replan(*previous, before.model, nodes, before.requirements);
    if (all.empty()) {
      EXPECT_EQ(result.status().code(), absl::StatusCode::kResourceExhausted);
      continue;
    }
    ASSERT_TRUE(result.ok()) << result.status();

    double optimum = std::numeric_limits<double>::infinity();
    for (const Plan& plan : all) optimum = std::min(optimum, plan.ObjectiveValue());
    const double bound = optimum * (1 + ReplanOptions{}.hysteresis);
    EXPECT_LE(result->plan.ObjectiveValue(), bound * (1 + 1e-9));

    std::vector<std::string> previous_owner(cost->num_layers());
    for (const Stage& stage : previous->stages) {
      for (int l = stage.layer_first; l < stage.layer_last; ++l)
        previous_owner[l] = stage.node_name;
    }
    auto moved = [&](const Plan& plan) {
      int count = 0;
      for (const Stage& stage : plan.stages) {
        for (int l = stage.layer_first; l < stage.layer_last; ++l) {
          count += previous_owner[l] != stage.node_name;
        }
      }
      return count;
    };
    int fewest = std::numeric_limits<int>::max();
    for (const Plan& plan : all) {
      if (plan.ObjectiveValue() <= bound) fewest = std::min(fewest, moved(plan));
    }
    EXPECT_EQ(result->moved_layers, moved(result->plan));
    EXPECT_EQ(result->moved_layers, fewest);
    (result->changed ? changed : kept)++;
  }
  EXPECT_GT(changed, 30);
  EXPECT_GT(kept, 30);
}

}  // namespace
}  // namespace tandem::partition
