#include "partition/cost_model.h"

#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tandem::partition {
namespace {

using ::testing::HasSubstr;

constexpr uint64_t kMiB = uint64_t{1} << 20;
constexpr uint64_t kGiB = uint64_t{1} << 30;

// Two layers with different shapes, plus an embedding and a head.
ModelProfile TwoLayerModel() {
  ModelProfile model;
  model.layers.push_back({.weight_bytes = 100 * kMiB,
                          .kv_bytes_per_token = 1000,
                          .flops_per_token = 1e9,
                          .bytes_read_per_token = 1e8});
  model.layers.push_back({.weight_bytes = 200 * kMiB,
                          .kv_bytes_per_token = 3000,
                          .flops_per_token = 8e9,
                          .bytes_read_per_token = 2e8});
  model.embedding = {.weight_bytes = 50 * kMiB, .flops_per_token = 0, .bytes_read_per_token = 1e4};
  model.head = {.weight_bytes = 60 * kMiB, .flops_per_token = 1e8, .bytes_read_per_token = 6e7};
  model.activation_bytes_per_token = 8192;
  return model;
}

NodeProfile Node(std::string name, double bandwidth, double flops, double rtt, double link) {
  return {.name = std::move(name),
          .memory_bytes = 4 * kGiB,
          .memory_bandwidth = bandwidth,
          .flops_per_second = flops,
          .link_rtt_seconds = rtt,
          .link_bandwidth = link};
}

Requirements Req(int64_t context, int64_t sessions) {
  Requirements req;
  req.context_length = context;
  req.sessions = sessions;
  return req;
}

TEST(CostModelTest, StageComputeIsRooflineOfSummedWork) {
  // 10 GB/s and 100 GFLOP/s.
  const std::vector<NodeProfile> nodes = {Node("a", 1e10, 1e11, 0, 1e8)};
  absl::StatusOr<CostModel> cost = CostModel::Create(TwoLayerModel(), nodes, Req(0, 1));
  ASSERT_TRUE(cost.ok()) << cost.status();
  // Layer 0 alone (first stage): bytes 1e8 + 1e4 -> 0.010001 s; flops 1e9 -> 0.01 s.
  EXPECT_DOUBLE_EQ(cost->ComputeSeconds(0, 0, 1), (1e8 + 1e4) / 1e10);
  // Layer 1 alone (last stage): bytes 2e8 + 6e7 -> 0.026 s; flops 8.1e9 -> 0.081 s.
  EXPECT_DOUBLE_EQ(cost->ComputeSeconds(0, 1, 2), 8.1e9 / 1e11);
  // Both: the roofline of the sums, not the sum of rooflines.
  EXPECT_DOUBLE_EQ(cost->ComputeSeconds(0, 0, 2),
                   std::max((1e8 + 2e8 + 1e4 + 6e7) / 1e10, (1e9 + 8e9 + 1e8) / 1e11));
}

TEST(CostModelTest, HopUsesSlowerLinkAndLargerRoundTrip) {
  const std::vector<NodeProfile> nodes = {Node("a", 1e10, 1e11, 2e-3, 1e8),
                                          Node("b", 1e10, 1e11, 6e-3, 5e7)};
  absl::StatusOr<CostModel> cost = CostModel::Create(TwoLayerModel(), nodes, Req(0, 1));
  ASSERT_TRUE(cost.ok()) << cost.status();
  EXPECT_DOUBLE_EQ(cost->HopTransferSeconds(0, 1), 8192 / 5e7);
  EXPECT_DOUBLE_EQ(cost->HopSeconds(0, 1), 3e-3 + 8192 / 5e7);
  EXPECT_DOUBLE_EQ(cost->HopSeconds(1, 0), cost->HopSeconds(0, 1));
  EXPECT_DOUBLE_EQ(cost->CoordinatorLegSeconds(1), 3e-3 + 4 / 5e7);
}

TEST(CostModelTest, EvaluateSumsLatencyAndTakesBottleneck) {
  const std::vector<NodeProfile> nodes = {Node("a", 1e10, 1e11, 2e-3, 1e8),
                                          Node("b", 2e10, 1e11, 6e-3, 5e7)};
  absl::StatusOr<CostModel> cost = CostModel::Create(TwoLayerModel(), nodes, Req(0, 1));
  ASSERT_TRUE(cost.ok()) << cost.status();
  absl::StatusOr<Plan> plan = cost->Evaluate({{1, 0, 1}, {0, 1, 2}}, Objective::kLatency);
  ASSERT_TRUE(plan.ok()) << plan.status();
  const double stage0 = std::max((1e8 + 1e4) / 2e10, 1e9 / 1e11);    // on b
  const double stage1 = std::max((2e8 + 6e7) / 1e10, 8.1e9 / 1e11);  // on a
  const double hop = 3e-3 + 8192 / 5e7;
  const double legs = (3e-3 + 4 / 5e7) + (1e-3 + 4 / 1e8);
  EXPECT_NEAR(plan->seconds_per_token, stage0 + stage1 + hop + legs, 1e-15);
  EXPECT_DOUBLE_EQ(plan->bottleneck_seconds, std::max({stage0, stage1, 8192 / 5e7}));
  EXPECT_DOUBLE_EQ(plan->tokens_per_second, 1 / plan->bottleneck_seconds);
  ASSERT_EQ(plan->stages.size(), 2u);
  EXPECT_EQ(plan->stages[0].node_name, "b");
  EXPECT_EQ(plan->stages[1].node_name, "a");
}

TEST(CostModelTest, MemoryCountsEndsKvAndHeadroom) {
  Requirements req = Req(1024, 3);
  req.headroom_bytes = 10 * kMiB;
  req.headroom_fraction = 0.25;
  const std::vector<NodeProfile> nodes = {Node("a", 1e10, 1e11, 0, 1e8)};
  absl::StatusOr<CostModel> cost = CostModel::Create(TwoLayerModel(), nodes, req);
  ASSERT_TRUE(cost.ok()) << cost.status();
  EXPECT_EQ(cost->WeightBytes(0, 1), 150 * kMiB);  // layer 0 + embedding
  EXPECT_EQ(cost->WeightBytes(1, 2), 260 * kMiB);  // layer 1 + head
  EXPECT_EQ(cost->WeightBytes(0, 2), 410 * kMiB);
  EXPECT_EQ(cost->KvBytes(0, 2), uint64_t{4000} * 1024 * 3);
  EXPECT_EQ(cost->HeadroomBytes(0), 10 * kMiB + kGiB);
}

TEST(CostModelTest, TiedHeadIsHeldOnceWhenOneNodeHasBothEnds) {
  ModelProfile model = TwoLayerModel();
  model.head_shares_embedding_weights = true;
  model.head.weight_bytes = model.embedding.weight_bytes;
  const std::vector<NodeProfile> nodes = {Node("a", 1e10, 1e11, 0, 1e8)};
  absl::StatusOr<CostModel> cost = CostModel::Create(model, nodes, Req(0, 1));
  ASSERT_TRUE(cost.ok()) << cost.status();
  EXPECT_EQ(cost->WeightBytes(0, 2), 350 * kMiB);
  EXPECT_EQ(cost->WeightBytes(0, 1) + cost->WeightBytes(1, 2), 400 * kMiB);
}

TEST(CostModelTest, FitsIsInclusiveToTheByte) {
  ModelProfile model = TwoLayerModel();
  NodeProfile node = Node("a", 1e10, 1e11, 0, 1e8);
  node.memory_bytes = 150 * kMiB;  // exactly layer 0 + embedding
  absl::StatusOr<CostModel> cost = CostModel::Create(model, {node}, Req(0, 1));
  ASSERT_TRUE(cost.ok()) << cost.status();
  EXPECT_TRUE(cost->Fits(0, 0, 1));
  EXPECT_EQ(cost->MaxLayerLast(0, 0), 1);
  node.memory_bytes -= 1;
  cost = CostModel::Create(model, {node}, Req(0, 1));
  ASSERT_TRUE(cost.ok()) << cost.status();
  EXPECT_FALSE(cost->Fits(0, 0, 1));
  EXPECT_EQ(cost->MaxLayerLast(0, 0), 0);
}

TEST(CostModelTest, EvaluateRejectsInvalidPlansWithReasons) {
  const std::vector<NodeProfile> nodes = {Node("a", 1e10, 1e11, 0, 1e8),
                                          Node("b", 1e10, 1e11, 0, 1e8)};
  absl::StatusOr<CostModel> cost = CostModel::Create(TwoLayerModel(), nodes, Req(0, 1));
  ASSERT_TRUE(cost.ok()) << cost.status();
  EXPECT_THAT(cost->Evaluate({{0, 0, 1}}, Objective::kLatency).status().message(),
              HasSubstr("covers layers [0, 1) of 2"));
  EXPECT_THAT(cost->Evaluate({{0, 0, 1}, {0, 1, 2}}, Objective::kLatency).status().message(),
              HasSubstr("more than one stage"));
  EXPECT_THAT(cost->Evaluate({{0, 0, 1}, {1, 0, 2}}, Objective::kLatency).status().message(),
              HasSubstr("[0, 2)"));

  NodeProfile small = Node("small", 1e10, 1e11, 0, 1e8);
  small.memory_bytes = kGiB / 10;
  cost = CostModel::Create(TwoLayerModel(), {small}, Req(0, 1));
  ASSERT_TRUE(cost.ok()) << cost.status();
  EXPECT_THAT(cost->Evaluate({{0, 0, 2}}, Objective::kLatency).status().message(),
              HasSubstr("need 0.4 GiB on \"small\" (with headroom), which has 0.1 GiB"));
}

TEST(CostModelTest, CreateRejectsBadInputsNamingThem) {
  std::vector<NodeProfile> nodes = {Node("a", 0, 1e11, 0, 1e8)};
  EXPECT_THAT(CostModel::Create(TwoLayerModel(), nodes, Req(0, 1)).status().message(),
              HasSubstr("node \"a\": memory_bandwidth must be a finite number > 0, got 0"));
  nodes = {Node("a", 1e10, 1e11, 0, 1e8), Node("a", 1e10, 1e11, 0, 1e8)};
  EXPECT_THAT(CostModel::Create(TwoLayerModel(), nodes, Req(0, 1)).status().message(),
              HasSubstr("\"a\" appears more than once"));
  nodes = {Node("a", 1e10, 1e11, -1, 1e8)};
  EXPECT_EQ(CostModel::Create(TwoLayerModel(), nodes, Req(0, 1)).status().code(),
            absl::StatusCode::kInvalidArgument);
  nodes = {Node("a", 1e10, 1e11, 0, 1e8)};
  EXPECT_THAT(CostModel::Create(ModelProfile{}, nodes, Req(0, 1)).status().message(),
              HasSubstr("no layers"));
  EXPECT_EQ(CostModel::Create(TwoLayerModel(), nodes, Req(-1, 1)).status().code(),
            absl::StatusCode::kInvalidArgument);
  ModelProfile huge = TwoLayerModel();
  huge.layers[0].kv_bytes_per_token = uint64_t{1} << 40;
  EXPECT_EQ(CostModel::Create(huge, nodes, Req(int64_t{1} << 30, 1)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// A node without the model file fetches the weights it lacks: transfer = missing bytes /
// link bandwidth, spread over the horizon in the stage's per-token cost.
TEST(CostModelTest, TransferCountsOnlyMissingWeightsAtTheLinkBandwidth) {
  NodeProfile fetching = Node("fetching", 1e10, 1e11, 0, 1e8);  // 100 MB/s link
  fetching.layers_held = {true, false};
  fetching.embedding_held = false;
  fetching.head_held = true;
  const std::vector<NodeProfile> nodes = {Node("file", 1e10, 1e11, 0, 1e8), fetching};
  Requirements req = Req(0, 1);
  req.transfer_horizon_tokens = 100;
  absl::StatusOr<CostModel> cost = CostModel::Create(TwoLayerModel(), nodes, req);
  ASSERT_TRUE(cost.ok()) << cost.status();
  // The node with the file never transfers.
  EXPECT_EQ(cost->TransferBytes(0, 0, 2), 0u);
  EXPECT_DOUBLE_EQ(cost->StageSeconds(0, 0, 2), cost->ComputeSeconds(0, 0, 2));
  // Layer 0 is held, the embedding is not: the first stage of layer 0 moves 50 MiB.
  EXPECT_EQ(cost->TransferBytes(1, 0, 1), 50 * kMiB);
  // Layer 1 (200 MiB) is missing; the head is held.
  EXPECT_EQ(cost->TransferBytes(1, 1, 2), 200 * kMiB);
  EXPECT_EQ(cost->TransferBytes(1, 0, 2), 250 * kMiB);
  EXPECT_DOUBLE_EQ(cost->TransferSeconds(1, 1, 2), 200 * kMiB / 1e8);
  EXPECT_DOUBLE_EQ(cost->StageSeconds(1, 1, 2),
                   cost->ComputeSeconds(1, 1, 2) + 200 * kMiB / 1e8 / 100);

  // The plan reports the transfer and counts it, amortised, in its latency.
  absl::StatusOr<Plan> plan = cost->Evaluate({{1, 0, 2}}, Objective::kLatency);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->stages[0].transfer_bytes, 250 * kMiB);
  EXPECT_DOUBLE_EQ(plan->transfer_seconds, 250 * kMiB / 1e8);
  absl::StatusOr<Plan> held = cost->Evaluate({{0, 0, 2}}, Objective::kLatency);
  ASSERT_TRUE(held.ok());
  EXPECT_NEAR(plan->seconds_per_token - held->seconds_per_token, 250 * kMiB / 1e8 / 100, 1e-12);
  EXPECT_EQ(held->transfer_seconds, 0);
}

// Once the node's fetches measured their rate, the transfer takes missing bytes / that
// rate, not the link's nominal bandwidth; a slower measured rate makes a fetching stage
// cost more, and the plan says so.
TEST(CostModelTest, TransferUsesTheMeasuredFetchRateWhenKnown) {
  NodeProfile fetching = Node("fetching", 1e10, 1e11, 0, 1e8);  // 100 MB/s link
  fetching.layers_held = {false, false};
  fetching.embedding_held = false;
  fetching.head_held = false;
  Requirements req = Req(0, 1);
  req.transfer_horizon_tokens = 100;
  absl::StatusOr<CostModel> nominal = CostModel::Create(TwoLayerModel(), {fetching}, req);
  ASSERT_TRUE(nominal.ok()) << nominal.status();
  const uint64_t bytes = nominal->TransferBytes(0, 0, 2);
  ASSERT_GT(bytes, 0u);
  EXPECT_DOUBLE_EQ(nominal->TransferSeconds(0, 0, 2), bytes / 1e8);

  fetching.fetch_bandwidth = 2.5e7;  // measured: a quarter of the link
  absl::StatusOr<CostModel> measured = CostModel::Create(TwoLayerModel(), {fetching}, req);
  ASSERT_TRUE(measured.ok()) << measured.status();
  EXPECT_EQ(measured->TransferBytes(0, 0, 2), bytes);
  EXPECT_DOUBLE_EQ(measured->TransferSeconds(0, 0, 2), bytes / 2.5e7);
  EXPECT_DOUBLE_EQ(measured->StageSeconds(0, 0, 2),
                   measured->ComputeSeconds(0, 0, 2) + bytes / 2.5e7 / 100);
  absl::StatusOr<Plan> plan = measured->Evaluate({{0, 0, 2}}, Objective::kLatency);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_DOUBLE_EQ(plan->transfer_seconds, bytes / 2.5e7);
  // Hops still use the link's bandwidth: the measured rate is only the fetch's.
  EXPECT_DOUBLE_EQ(measured->HopTransferSeconds(0, 0), nominal->HopTransferSeconds(0, 0));

  fetching.fetch_bandwidth = -1;
  EXPECT_THAT(CostModel::Create(TwoLayerModel(), {fetching}, req).status().message(),
              HasSubstr("fetch_bandwidth must be a finite number >= 0"));
}

TEST(CostModelTest, TransferInputsAreChecked) {
  NodeProfile bad = Node("a", 1e10, 1e11, 0, 1e8);
  bad.layers_held = {true};  // one flag for two layers
  EXPECT_THAT(CostModel::Create(TwoLayerModel(), {bad}, Req(0, 1)).status().message(),
              HasSubstr("layers_held has 1 entries for 2 layers"));
  Requirements req = Req(0, 1);
  req.transfer_horizon_tokens = 0;
  EXPECT_EQ(
      CostModel::Create(TwoLayerModel(), {Node("a", 1e10, 1e11, 0, 1e8)}, req).status().code(),
      absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace tandem::partition
