// The planner against brute force on hundreds of small random instances: same
// feasibility, same optimal objective (within 1e-9 relative), valid plans.
#include <algorithm>
#include <limits>
#include <random>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "partition/cost_model.h"
#include "partition/planner.h"
#include "partition/testing/brute_force.h"
#include "partition/testing/random_instance.h"

namespace tandem::partition {
namespace {

using testing::AllValidPlans;
using ::testing::HasSubstr;
using testing::Instance;
using testing::RandomInstance;

constexpr int kInstances = 400;
constexpr double kRelative = 1e-9;

double MinOf(const std::vector<Plan>& plans, double (*value)(const Plan&)) {
  double best = std::numeric_limits<double>::infinity();
  for (const Plan& plan : plans) best = std::min(best, value(plan));
  return best;
}

void ExpectValid(const CostModel& cost, const Plan& plan) {
  ASSERT_FALSE(plan.stages.empty());
  EXPECT_EQ(plan.stages.front().layer_first, 0);
  EXPECT_EQ(plan.stages.back().layer_last, cost.num_layers());
  for (size_t s = 0; s < plan.stages.size(); ++s) {
    const Stage& stage = plan.stages[s];
    EXPECT_LT(stage.layer_first, stage.layer_last);
    if (s > 0) {
      EXPECT_EQ(stage.layer_first, plan.stages[s - 1].layer_last);
    }
    EXPECT_LE(stage.memory_bytes(), cost.node(stage.node_index).memory_bytes);
  }
}

class PlannerPropertyTest : public ::testing::TestWithParam<Objective> {};

TEST_P(PlannerPropertyTest, MatchesBruteForce) {
  const Objective objective = GetParam();
  std::mt19937 rng(20240611);
  int feasible = 0;
  int multi_stage = 0;
  int left_out_nodes = 0;
  for (int i = 0; i < kInstances; ++i) {
    SCOPED_TRACE(::testing::Message() << "instance " << i);
    Instance instance = RandomInstance(rng, /*max_nodes=*/5, /*max_layers=*/7);
    instance.requirements.objective = objective;
    absl::StatusOr<CostModel> cost =
        CostModel::Create(instance.model, instance.nodes, instance.requirements);
    ASSERT_TRUE(cost.ok()) << cost.status();
    const std::vector<Plan> all = AllValidPlans(*cost, objective);
    absl::StatusOr<Plan> plan = FindPlan(instance.model, instance.nodes, instance.requirements);

    if (all.empty()) {
      ASSERT_EQ(plan.status().code(), absl::StatusCode::kResourceExhausted) << plan.status();
      EXPECT_THAT(plan.status().message(), HasSubstr(" GiB"));
      continue;
    }
    ASSERT_TRUE(plan.ok()) << plan.status();
    ++feasible;
    multi_stage += plan->stages.size() > 1;
    left_out_nodes += plan->stages.size() < instance.nodes.size();
    EXPECT_TRUE(plan->exact);
    ExpectValid(*cost, *plan);

    if (objective == Objective::kLatency) {
      const double best = MinOf(all, [](const Plan& p) { return p.seconds_per_token; });
      EXPECT_NEAR(plan->seconds_per_token, best, kRelative * best);
    } else {
      const double best = MinOf(all, [](const Plan& p) { return p.bottleneck_seconds; });
      EXPECT_NEAR(plan->bottleneck_seconds, best, kRelative * best);
      // Secondary goal: lowest latency among plans no slower in the pipeline.
      std::vector<Plan> as_fast;
      for (const Plan& p : all) {
        if (p.bottleneck_seconds <= plan->bottleneck_seconds) as_fast.push_back(p);
      }
      const double best_latency = MinOf(as_fast, [](const Plan& p) { return p.seconds_per_token; });
      EXPECT_NEAR(plan->seconds_per_token, best_latency, kRelative * best_latency);
    }

    // Deterministic: the same input gives the same plan.
    absl::StatusOr<Plan> again = FindPlan(instance.model, instance.nodes, instance.requirements);
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(Ranges(*again), Ranges(*plan));
  }
  // The generator must exercise the interesting cases, or the test proves little.
  EXPECT_GT(feasible, kInstances / 2);
  EXPECT_LT(feasible, kInstances);
  EXPECT_GT(multi_stage, kInstances / 5);
  EXPECT_GT(left_out_nodes, kInstances / 10);
}

INSTANTIATE_TEST_SUITE_P(Objectives, PlannerPropertyTest,
                         ::testing::Values(Objective::kLatency, Objective::kThroughput),
                         [](const ::testing::TestParamInfo<Objective>& info) {
                           return info.param == Objective::kLatency ? "Latency" : "Throughput";
                         });

}  // namespace
}  // namespace tandem::partition
