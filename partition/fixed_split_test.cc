#include "partition/fixed_split.h"

#include <gtest/gtest.h>

namespace tandem::partition {
namespace {

NodeProfile Node(const std::string& name, uint64_t memory) {
  NodeProfile n;
  n.name = name;
  n.memory_bytes = memory;
  n.memory_bandwidth = 1e10;
  n.flops_per_second = 1e11;
  n.link_rtt_seconds = 1e-4;
  n.link_bandwidth = 1e9;
  return n;
}

TEST(EvenSplit, GivesEveryNodeALayerAndTheRestByMemory) {
  auto counts = EvenSplit({Node("a", 100), Node("b", 300)}, 10);
  ASSERT_TRUE(counts.ok()) << counts.status();
  EXPECT_EQ(*counts, (std::vector<int>{3, 7}));  // one each, then 8 layers split 1:3
  auto equal = EvenSplit({Node("a", 5), Node("b", 5), Node("c", 5)}, 5);
  ASSERT_TRUE(equal.ok());
  EXPECT_EQ(*equal, (std::vector<int>{2, 2, 1}));  // ties go to the earlier node
  EXPECT_EQ(EvenSplit({Node("a", 1), Node("b", 1)}, 1).status().code(),
            absl::StatusCode::kInvalidArgument);
}

class FixedPlanTest : public ::testing::Test {
 protected:
  ModelProfile Model(int layers) {
    ModelProfile m;
    for (int i = 0; i < layers; ++i) {
      m.layers.push_back({/*weight_bytes=*/1000, /*kv_bytes_per_token=*/10, 2000.0, 1000.0});
    }
    m.embedding = {500, 0, 10};
    m.head = {600, 1200, 600};
    m.activation_bytes_per_token = 256;
    return m;
  }
  Requirements Req() {
    Requirements r;
    r.context_length = 10;
    r.sessions = 1;
    return r;
  }
};

TEST_F(FixedPlanTest, StagesFollowTheCountsAndArePredictedByTheCostModel) {
  auto cost = CostModel::Create(Model(4), {Node("a", 1 << 20), Node("b", 1 << 20)}, Req());
  ASSERT_TRUE(cost.ok()) << cost.status();
  auto plan = FixedPlan(*cost, {1, 3});
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->stages.size(), 2u);
  EXPECT_EQ(plan->stages[0].layer_last, 1);
  EXPECT_EQ(plan->stages[1].layer_first, 1);
  EXPECT_EQ(plan->stages[1].weight_bytes, cost->WeightBytes(1, 4));
  auto evaluated = cost->Evaluate(Ranges(*plan), Objective::kLatency);
  ASSERT_TRUE(evaluated.ok());
  EXPECT_DOUBLE_EQ(plan->seconds_per_token, evaluated->seconds_per_token);
  // A node with no layers is left out.
  auto skip = FixedPlan(*cost, {0, 4});
  ASSERT_TRUE(skip.ok());
  EXPECT_EQ(skip->stages.size(), 1u);
  EXPECT_EQ(skip->stages[0].node_index, 1);
}

TEST_F(FixedPlanTest, RefusesBadCountsAndNodesThatCannotHoldTheirLayers) {
  auto cost = CostModel::Create(Model(4), {Node("a", 1 << 20), Node("small", 2000)}, Req());
  ASSERT_TRUE(cost.ok());
  EXPECT_EQ(FixedPlan(*cost, {1, 2}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FixedPlan(*cost, {5, -1}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FixedPlan(*cost, {1}).status().code(), absl::StatusCode::kInvalidArgument);
  absl::Status too_small = FixedPlan(*cost, {1, 3}).status();
  EXPECT_EQ(too_small.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(too_small.message().find("small"), std::string::npos) << too_small;
}

}  // namespace
}  // namespace tandem::partition
