// Starts a real coordinator and two nodes on 127.0.0.1 (children of the test, taken down
// by LocalCluster's destructor even when an assertion fails) and checks what
// `tandem plan --coordinator` reports about the live cluster.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/local_cluster.h"

namespace {

using ::testing::HasSubstr;
using Json = nlohmann::json;

constexpr char kModel[] = TANDEM_SHARED_DIR "/models/stories260K-f32.gguf";
constexpr int kModelLayers = 5;

using tandem::testing::CommandResult;

class PlanLiveTest : public ::testing::Test {
 protected:
  // A coordinator with `planner` and `nodes` nodes of one thread each, ready to serve.
  absl::Status StartCluster(const std::string& planner, int nodes) {
    tandem::testing::ClusterOptions options;
    options.model = kModel;
    options.nodes = nodes;
    options.planner = planner;
    options.coordinator_args = {"--ctx-size", "64"};
    return cluster_.Start(options);
  }

  CommandResult Plan(const std::string& args) { return tandem::testing::RunTandem("plan " + args); }

  // Every layer in exactly one stage, stages in order from layer 0.
  static void ExpectCoversEveryLayerOnce(const Json& stages) {
    int next = 0;
    for (const Json& stage : stages) {
      EXPECT_EQ(stage["first_layer"].get<int>(), next) << stages.dump();
      EXPECT_GT(stage["last_layer"].get<int>(), stage["first_layer"].get<int>());
      next = stage["last_layer"].get<int>();
    }
    EXPECT_EQ(next, kModelLayers) << stages.dump();
  }

  tandem::testing::LocalCluster cluster_;  // stops every child when the test ends
};

TEST_F(PlanLiveTest, EvenSplitShowsBothStagesAndThePrediction) {
  const absl::Status started = StartCluster("even", 2);
  ASSERT_TRUE(started.ok()) << started.message();

  const CommandResult run = Plan("--coordinator " + cluster_.address() + " --json");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const Json plan = Json::parse(run.out);
  EXPECT_TRUE(plan["feasible"].get<bool>());
  EXPECT_EQ(plan["reason"], "");
  EXPECT_EQ(plan["planner"], "even");
  EXPECT_EQ(plan["n_layers"], kModelLayers);
  ASSERT_EQ(plan["stages"].size(), 2u) << run.out;
  ExpectCoversEveryLayerOnce(plan["stages"]);
  EXPECT_NE(plan["stages"][0]["node"], plan["stages"][1]["node"]);
  for (const Json& stage : plan["stages"]) {
    EXPECT_GT(stage["memory_gib"].get<double>(), 0);
    EXPECT_GT(stage["compute_ms"].get<double>(), 0);
  }
  // Even plans are judged by the same cost model as the planner's.
  EXPECT_GT(plan["predicted_ms_per_token"].get<double>(), 0);
  EXPECT_GT(plan["predicted_tokens_per_s"].get<double>(), 0);

  ASSERT_EQ(plan["nodes"].size(), 2u);
  for (const Json& node : plan["nodes"]) {
    EXPECT_EQ(node["threads"], 1);
    EXPECT_GT(node["bandwidth_gbs"].get<double>(), 0);
    EXPECT_GT(node["gflops"].get<double>(), 0);
    EXPECT_GT(node["rtt_ms"].get<double>(), 0);
  }
}

TEST_F(PlanLiveTest, OptimalPlannerCoversEveryLayerAndPrintsTheTable) {
  const absl::Status started = StartCluster("optimal", 2);
  ASSERT_TRUE(started.ok()) << started.message();

  const CommandResult json = Plan("--coordinator " + cluster_.address() + " --json");
  ASSERT_EQ(json.exit_code, 0) << json.err;
  const Json plan = Json::parse(json.out);
  EXPECT_EQ(plan["planner"], "optimal");
  // On loopback a hop may cost more than it saves: one stage or two are both right.
  ASSERT_GE(plan["stages"].size(), 1u);
  ASSERT_LE(plan["stages"].size(), 2u);
  ExpectCoversEveryLayerOnce(plan["stages"]);
  EXPECT_GT(plan["predicted_ms_per_token"].get<double>(), 0);

  const CommandResult table = Plan("--coordinator " + cluster_.address());
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_THAT(table.out, HasSubstr("planner optimal"));
  EXPECT_THAT(table.out, HasSubstr("predicted:"));
  EXPECT_THAT(table.out, HasSubstr("node (measured)"));
}

TEST_F(PlanLiveTest, UnreachableCoordinatorIsOneErrorLine) {
  // Port 1 on loopback: nothing listens there.
  const CommandResult run = Plan("--coordinator 127.0.0.1:1 --json");
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_THAT(run.err, HasSubstr("cannot reach the coordinator at 127.0.0.1:1"));
}

TEST_F(PlanLiveTest, NeitherCoordinatorNorModelIsAClearError) {
  CommandResult run = Plan("--json");
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_THAT(run.err, HasSubstr("either --coordinator HOST:PORT, or both -m MODEL and --nodes"));

  run = Plan(std::string("--coordinator 127.0.0.1:1 -m ") + kModel);
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_THAT(run.err, HasSubstr("not both"));
}

}  // namespace
