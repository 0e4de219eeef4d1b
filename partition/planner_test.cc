#include "partition/planner.h"

#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "partition/testing/builders.h"

namespace tandem::partition {
namespace {

using ::testing::AllOf;
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

TEST(PlannerTest, OneNodeRunsEverything) {
  const ModelProfile model = UniformModel(6, kGiB / 4);
  absl::StatusOr<Plan> plan = FindPlan(model, {SimpleNode("solo", 4 * kGiB, 2e10)}, NoKv());
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_THAT(Ranges(*plan), ElementsAre(StageRange{0, 0, 6}));
  EXPECT_EQ(plan->stages[0].node_name, "solo");
  EXPECT_TRUE(plan->exact);
  // 1.5 GiB at 20 GB/s plus a 1 ms round trip to the coordinator.
  EXPECT_NEAR(plan->seconds_per_token, 1.5 * kGiB / 2e10 + 1e-3 + 8 / 125e6, 1e-12);
}

TEST(PlannerTest, LeavesOutNodesThatOnlySlowThePipeline) {
  const ModelProfile model = UniformModel(8, kGiB / 4);
  const std::vector<NodeProfile> nodes = {SimpleNode("slow", 4 * kGiB, 5e9),
                                          SimpleNode("fast", 4 * kGiB, 3e10)};
  absl::StatusOr<Plan> plan = FindPlan(model, nodes, NoKv());
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_THAT(Ranges(*plan), ElementsAre(StageRange{1, 0, 8}));
}

TEST(PlannerTest, SplitsByMemoryAndGivesTheFastNodeAllItCanHold) {
  const ModelProfile model = UniformModel(8, kGiB / 4);
  // fast holds 5 layers, slow holds all 8: the fast node should be full.
  const std::vector<NodeProfile> nodes = {SimpleNode("slow", 4 * kGiB, 5e9),
                                          SimpleNode("fast", 5 * kGiB / 4, 3e10)};
  absl::StatusOr<Plan> plan = FindPlan(model, nodes, NoKv());
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->stages.size(), 2u);
  for (const Stage& stage : plan->stages) {
    EXPECT_EQ(stage.num_layers(), stage.node_name == "fast" ? 5 : 3);
    EXPECT_LE(stage.memory_bytes(), nodes[stage.node_index].memory_bytes);
  }
}

TEST(PlannerTest, OrdersNodesToKeepTheSlowLinkAtAnEnd) {
  // Three nodes must each take a third; "far" has a slow link, so it should pay
  // one activation transfer (at an end), not two (in the middle).
  const ModelProfile model = UniformModel(6, kGiB / 4);
  std::vector<NodeProfile> nodes = {SimpleNode("a", kGiB / 2, 2e10),
                                    SimpleNode("far", kGiB / 2, 2e10),
                                    SimpleNode("b", kGiB / 2, 2e10)};
  nodes[1].link_bandwidth = 1e6;
  absl::StatusOr<Plan> plan = FindPlan(model, nodes, NoKv());
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->stages.size(), 3u);
  EXPECT_NE(plan->stages[1].node_name, "far");
}

TEST(PlannerTest, HeavyHeadGoesToTheNodeWithMoreBandwidth) {
  ModelProfile model = UniformModel(4, kGiB / 4);
  model.head.weight_bytes = kGiB / 2;
  model.head.bytes_read_per_token = kGiB / 2;
  const std::vector<NodeProfile> nodes = {SimpleNode("a", kGiB, 1e10), SimpleNode("b", kGiB, 4e10)};
  absl::StatusOr<Plan> plan = FindPlan(model, nodes, NoKv());
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->stages.size(), 2u);
  EXPECT_EQ(plan->stages.back().node_name, "b");
}

TEST(PlannerTest, TiesGoToFewerStagesThenLowerNodeIndex) {
  const ModelProfile model = UniformModel(4, kGiB / 4);
  std::vector<NodeProfile> nodes;
  for (const char* name : {"n0", "n1", "n2"}) {
    nodes.push_back(SimpleNode(name, 4 * kGiB, 2e10));
    nodes.back().link_rtt_seconds = 0;  // splitting then costs only the transfer
  }
  for (NodeProfile& node : nodes) node.link_bandwidth = 1e30;  // and nothing at all
  absl::StatusOr<Plan> plan = FindPlan(model, nodes, NoKv());
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_THAT(Ranges(*plan), ElementsAre(StageRange{0, 0, 4}));

  // Two stages needed (each node holds 2 layers): the lowest indices, in order,
  // earliest boundary; and the same answer every time.
  for (NodeProfile& node : nodes) node.memory_bytes = kGiB / 2;
  plan = FindPlan(model, nodes, NoKv());
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_THAT(Ranges(*plan), ElementsAre(StageRange{0, 0, 2}, StageRange{1, 2, 4}));
  for (int i = 0; i < 5; ++i) EXPECT_EQ(Ranges(*FindPlan(model, nodes, NoKv())), Ranges(*plan));
}

TEST(PlannerTest, NodeWithZeroFreeMemoryIsNeverUsed) {
  const ModelProfile model = UniformModel(4, kGiB / 4);
  const std::vector<NodeProfile> nodes = {SimpleNode("empty", 0, 1e12),
                                          SimpleNode("ok", 2 * kGiB, 1e10)};
  absl::StatusOr<Plan> plan = FindPlan(model, nodes, NoKv());
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_THAT(Ranges(*plan), ElementsAre(StageRange{1, 0, 4}));
}

TEST(PlannerTest, InfeasibleTotalMemoryNamesTheNumbers) {
  // 38 layers of 1 GiB; 32 of them keep 32 KiB of KV per token: 4 GiB at 4096.
  ModelProfile model = UniformModel(38, kGiB);
  for (int l = 0; l < 32; ++l) model.layers[l].kv_bytes_per_token = 32 * 1024;
  Requirements req = NoKv();
  req.context_length = 4096;
  const std::vector<NodeProfile> nodes = {SimpleNode("a", 10 * kGiB, 1e10),
                                          SimpleNode("b", 10 * kGiB, 1e10),
                                          SimpleNode("c", 10 * kGiB, 1e10)};
  absl::StatusOr<Plan> plan = FindPlan(model, nodes, req);
  ASSERT_EQ(plan.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(plan.status().message(),
              AllOf(HasSubstr("needs 38.0 GiB for weights + 4.0 GiB KV cache"),
                    HasSubstr("context 4096 x 1 session"),
                    HasSubstr("the 3 nodes offer 30.0 GiB after 0.0 GiB headroom")));
}

TEST(PlannerTest, AllNodesWithoutMemoryIsInfeasible) {
  const ModelProfile model = UniformModel(2, kGiB);
  absl::StatusOr<Plan> plan =
      FindPlan(model, {SimpleNode("a", 0, 1e10), SimpleNode("b", 0, 1e10)}, NoKv());
  ASSERT_EQ(plan.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(plan.status().message(), HasSubstr("the 2 nodes offer 0.0 GiB"));
}

TEST(PlannerTest, NoNodesIsInfeasible) {
  absl::StatusOr<Plan> plan = FindPlan(UniformModel(2, kGiB), {}, NoKv());
  ASSERT_EQ(plan.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(plan.status().message(), HasSubstr("needs 2.0 GiB for weights"));
}

TEST(PlannerTest, InfeasibleBecauseOneLayerIsTooBigForAnyNode) {
  ModelProfile model = UniformModel(3, kGiB);
  model.layers[1].weight_bytes = 3 * kGiB;
  Requirements req = NoKv();
  req.headroom_bytes = kGiB / 2;
  const std::vector<NodeProfile> nodes = {SimpleNode("a", 3 * kGiB, 1e10),
                                          SimpleNode("b", 3 * kGiB, 1e10)};
  absl::StatusOr<Plan> plan = FindPlan(model, nodes, req);
  ASSERT_EQ(plan.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(plan.status().message(),
              HasSubstr("layer 1 needs 3.0 GiB (weights + KV cache), more than the largest node "
                        "offers (2.5 GiB after headroom)"));
}

TEST(PlannerTest, HeadroomFractionIsReserved) {
  const ModelProfile model = UniformModel(4, kGiB / 4);  // 1 GiB
  Requirements req = NoKv();
  req.headroom_fraction = 0.5;
  // 1.5 GiB minus half of it leaves 0.75 GiB: three layers, not four.
  const std::vector<NodeProfile> nodes = {SimpleNode("a", 3 * kGiB / 2, 2e10),
                                          SimpleNode("b", 3 * kGiB / 2, 1e10)};
  absl::StatusOr<Plan> plan = FindPlan(model, nodes, req);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_THAT(Ranges(*plan), ElementsAre(StageRange{0, 0, 3}, StageRange{1, 3, 4}));
  EXPECT_EQ(plan->stages[0].headroom_bytes, 3 * kGiB / 4);
}

TEST(PlannerTest, KvReservationScalesWithContextAndSessions) {
  ModelProfile model = UniformModel(4, kGiB / 8);
  for (LayerProfile& layer : model.layers) layer.kv_bytes_per_token = 1024;
  Requirements req = NoKv();
  req.context_length = 8192;
  req.sessions = 16;  // 128 MiB of KV per layer: a layer takes 0.25 GiB
  const std::vector<NodeProfile> nodes = {SimpleNode("a", kGiB / 2, 2e10),
                                          SimpleNode("b", 2 * kGiB, 1e10)};
  absl::StatusOr<Plan> plan = FindPlan(model, nodes, req);
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->stages.size(), 2u);
  EXPECT_EQ(plan->stages[0].node_name, "a");
  EXPECT_EQ(plan->stages[0].num_layers(), 2);
  EXPECT_EQ(plan->stages[0].kv_bytes, 2 * kGiB / 8);
}

TEST(PlannerTest, ThroughputSpreadsWhatLatencyKeepsTogether) {
  const ModelProfile model = UniformModel(8, kGiB / 4);
  const std::vector<NodeProfile> nodes = {SimpleNode("a", 4 * kGiB, 2e10),
                                          SimpleNode("b", 4 * kGiB, 2e10)};
  absl::StatusOr<Plan> latency = FindPlan(model, nodes, NoKv(Objective::kLatency));
  ASSERT_TRUE(latency.ok()) << latency.status();
  EXPECT_EQ(latency->stages.size(), 1u);
  absl::StatusOr<Plan> throughput = FindPlan(model, nodes, NoKv(Objective::kThroughput));
  ASSERT_TRUE(throughput.ok()) << throughput.status();
  EXPECT_THAT(Ranges(*throughput), ElementsAre(StageRange{0, 0, 4}, StageRange{1, 4, 8}));
  EXPECT_NEAR(throughput->tokens_per_second, 2 * latency->tokens_per_second,
              1e-9 * latency->tokens_per_second);
}

TEST(PlannerTest, ManyNodesFallBackToTheDocumentedHeuristic) {
  const ModelProfile model = UniformModel(40, kGiB / 8);
  std::vector<NodeProfile> nodes;
  std::mt19937 rng(7);
  for (int j = 0; j < 20; ++j) {
    nodes.push_back(SimpleNode(absl::StrCat("n", j), kGiB,
                               std::uniform_real_distribution<double>(5e9, 3e10)(rng)));
  }
  absl::StatusOr<Plan> plan = FindPlan(model, nodes, NoKv());
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_FALSE(plan->exact);
  EXPECT_EQ(plan->stages.back().layer_last, 40);
  for (const Stage& stage : plan->stages) EXPECT_LE(stage.memory_bytes(), kGiB);
}

TEST(PlannerTest, InvalidInputIsInvalidArgument) {
  NodeProfile node = SimpleNode("a", kGiB, 1e10);
  node.flops_per_second = -1;
  EXPECT_EQ(FindPlan(UniformModel(2, kGiB / 4), {node}, NoKv()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// Two equal nodes, one holding no weights: the planner gives the model to the one that
// holds it; when the empty node is much faster the transfer is worth it, and with a
// short horizon it is not.
TEST(PlannerTest, PrefersNodesThatHoldTheLayersUnlessTheTransferPaysOff) {
  const ModelProfile model = UniformModel(4, kGiB / 4);
  NodeProfile empty = SimpleNode("empty", 4 * kGiB, 2e10);
  empty.layers_held.assign(4, false);
  empty.embedding_held = empty.head_held = false;
  const NodeProfile holder = SimpleNode("holder", 4 * kGiB, 2e10);
  absl::StatusOr<Plan> plan = FindPlan(model, {empty, holder}, NoKv());
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_THAT(Ranges(*plan), ElementsAre(StageRange{1, 0, 4}));
  EXPECT_EQ(plan->transfer_seconds, 0);

  // Five times faster: 1 GiB at 125 MB/s over 1000 tokens is ~8.6 ms per token, less than
  // the ~43 ms the faster node saves.
  NodeProfile fast_empty = SimpleNode("empty", 4 * kGiB, 1e11);
  fast_empty.layers_held.assign(4, false);
  fast_empty.embedding_held = fast_empty.head_held = false;
  plan = FindPlan(model, {fast_empty, holder}, NoKv());
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_THAT(Ranges(*plan), ElementsAre(StageRange{0, 0, 4}));
  EXPECT_GT(plan->transfer_seconds, 0);

  // Over 10 tokens the transfer costs ~0.86 s per token: stay with the holder.
  Requirements short_horizon = NoKv();
  short_horizon.transfer_horizon_tokens = 10;
  plan = FindPlan(model, {fast_empty, holder}, short_horizon);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_THAT(Ranges(*plan), ElementsAre(StageRange{1, 0, 4}));
}

// A node that holds some layers gets those, when speeds are equal and memory forces a split.
TEST(PlannerTest, SplitFollowsWhatEachNodeHolds) {
  const ModelProfile model = UniformModel(4, kGiB / 4);
  NodeProfile a = SimpleNode("a", kGiB * 6 / 10, 2e10);  // two layers at most
  NodeProfile b = SimpleNode("b", kGiB * 6 / 10, 2e10);
  a.layers_held = {false, false, true, true};
  a.embedding_held = false;
  b.layers_held = {true, true, false, false};
  b.head_held = false;
  absl::StatusOr<Plan> plan = FindPlan(model, {a, b}, NoKv());
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_THAT(Ranges(*plan), ElementsAre(StageRange{1, 0, 2}, StageRange{0, 2, 4}));
  EXPECT_EQ(plan->transfer_seconds, 0);
}

}  // namespace
}  // namespace tandem::partition
