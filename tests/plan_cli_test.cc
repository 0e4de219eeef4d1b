// Runs the built `tandem plan` on the shared 5-layer model with temporary
// NODES.json files and checks what it prints and how it exits.
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

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

class PlanCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("tandem_plan_cli_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string WriteNodes(const std::string& text) {
    const std::filesystem::path path = dir_ / "nodes.json";
    std::ofstream(path) << text;
    return path.string();
  }

  CommandResult Plan(const std::string& args) {
    return tandem::testing::RunTandem(std::string("plan -m ") + kModel + " " + args);
  }

  std::filesystem::path dir_;
};

// The model is about 1.1 MiB of weights plus KV cache; 0.0007 GiB (0.7 MiB) nodes
// need at least two of them.
constexpr char kThreeSmallNodes[] = R"({"nodes": [
  {"name": "desk", "memory_gib": 0.0007, "bandwidth_gbs": 40, "gflops": 300, "rtt_ms": 0.5, "link_gbps": 1},
  {"name": "laptop", "memory_gib": 0.0007, "bandwidth_gbs": 20, "gflops": 100, "rtt_ms": 2, "link_gbps": 0.1},
  {"name": "pi", "memory_gib": 0.0007, "bandwidth_gbs": 4, "gflops": 10, "rtt_ms": 5, "link_gbps": 0.1}
]})";

TEST_F(PlanCliTest, JsonPlanCoversEveryLayerOnce) {
  const CommandResult run =
      Plan("--nodes " + WriteNodes(kThreeSmallNodes) + " --json --context 64");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const Json plan = Json::parse(run.out);
  EXPECT_EQ(plan["feasible"], true);
  EXPECT_EQ(plan["reason"], "");
  ASSERT_GE(plan["stages"].size(), 2u) << "0.7 MiB nodes cannot hold the model alone";
  int next = 0;
  for (const Json& stage : plan["stages"]) {
    EXPECT_THAT(std::string(stage["node"]), ::testing::AnyOf("desk", "laptop", "pi"));
    EXPECT_EQ(stage["first_layer"], next);
    EXPECT_GT(stage["last_layer"].get<int>(), next);
    EXPECT_GT(stage["memory_gib"].get<double>(), 0);
    EXPECT_LE(stage["memory_gib"].get<double>(), 0.0007);
    next = stage["last_layer"];
  }
  EXPECT_EQ(next, kModelLayers);
  EXPECT_GT(plan["predicted_ms_per_token"].get<double>(), 0);
  EXPECT_GT(plan["predicted_tokens_per_s"].get<double>(), 0);
}

TEST_F(PlanCliTest, RoomyFastNodeTakesEverythingAndTableIsPrinted) {
  const std::string nodes = WriteNodes(R"({"nodes": [
    {"name": "slow", "memory_gib": 1, "bandwidth_gbs": 1, "gflops": 10, "rtt_ms": 1, "link_gbps": 1},
    {"name": "fast", "memory_gib": 1, "bandwidth_gbs": 50, "gflops": 500, "rtt_ms": 1, "link_gbps": 1}
  ]})");
  CommandResult run = Plan("--nodes " + nodes + " --json");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const Json plan = Json::parse(run.out);
  ASSERT_EQ(plan["stages"].size(), 1u);
  EXPECT_EQ(plan["stages"][0]["node"], "fast");
  EXPECT_EQ(plan["stages"][0]["last_layer"], kModelLayers);

  run = Plan("--nodes " + nodes + " --objective throughput");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_THAT(run.out, HasSubstr("fast"));
  EXPECT_THAT(run.out, HasSubstr("[0, 5)"));
  EXPECT_THAT(run.out, HasSubstr("ms/token"));
}

TEST_F(PlanCliTest, InfeasibleClusterExitsNonZeroWithTheNumbers) {
  const std::string nodes = WriteNodes(R"({"nodes": [
    {"name": "tiny", "memory_gib": 0.0001, "bandwidth_gbs": 40, "gflops": 300, "rtt_ms": 0.5, "link_gbps": 1}
  ]})");
  CommandResult run = Plan("--nodes " + nodes + " --json");
  EXPECT_NE(run.exit_code, 0);
  const Json plan = Json::parse(run.out);
  EXPECT_EQ(plan["feasible"], false);
  EXPECT_THAT(std::string(plan["reason"]),
              ::testing::ContainsRegex("needs [0-9.]+ MiB for weights \\+ [0-9.]+ MiB KV cache"));
  EXPECT_THAT(std::string(plan["reason"]), HasSubstr("the 1 node offers"));
  EXPECT_TRUE(plan["stages"].empty());

  run = Plan("--nodes " + nodes);
  EXPECT_NE(run.exit_code, 0);
  EXPECT_THAT(run.err, HasSubstr("needs"));
}

TEST_F(PlanCliTest, BadNodesFileIsOneErrorLine) {
  for (const char* text : {R"({"nodes": [ {"name": "a", )",
                           R"({"nodes": [{"name": "a", "memory_gib": 1, "bandwidth_gbs": 40,
                               "rtt_ms": 0.5, "link_gbps": 1}]})",
                           R"({"nodes": [{"name": "a", "memory_gib": "lots", "bandwidth_gbs": 40,
                               "gflops": 1, "rtt_ms": 0.5, "link_gbps": 1}]})",
                           R"([1, 2])"}) {
    SCOPED_TRACE(text);
    const CommandResult run = Plan("--nodes " + WriteNodes(text) + " --json");
    EXPECT_NE(run.exit_code, 0);
    EXPECT_EQ(run.out, "");
    EXPECT_THAT(run.err, HasSubstr("nodes.json"));
    EXPECT_EQ(std::count(run.err.begin(), run.err.end(), '\n'), 1) << run.err;
  }
  const CommandResult missing =
      Plan("--nodes " + WriteNodes(R"({"nodes": [{"name": "a", "memory_gib": 1,
      "bandwidth_gbs": 40, "rtt_ms": 0.5, "link_gbps": 1}]})"));
  EXPECT_THAT(missing.err, HasSubstr("nodes[0] (\"a\"): field \"gflops\" is missing"));
}

}  // namespace
