// A real cluster seen from outside: a node's /metrics (`tandem node --metrics`) passes
// promtool, the nodes' heartbeats turn into per-stage rates in `tandem status --json`,
// `tandem status` prints the plan as a table, and a node the plan gives no layers reads
// "standby". Only 127.0.0.1.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "net/client.h"
#include "tests/golden_support.h"
#include "tests/local_cluster.h"

namespace tandem {
namespace {

using ::testing::HasSubstr;
using testing::SharedPath;

const std::string kModel = SharedPath("models/stories260K-f32.gguf");

struct Output {
  int exit_code = -1;
  std::string text;
};

Output Shell(const std::string& command) {
  Output out;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) out.text.append(buf, n);
  const int status = ::pclose(pipe);
  out.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

// The port a node printed for its /metrics, waiting for the line to appear.
int MetricsPort(testing::LocalCluster& cluster, size_t node) {
  const std::regex line(R"(metrics at http://127\.0\.0\.1:(\d+)/metrics)");
  for (int i = 0; i < 200; ++i) {
    std::smatch m;
    const std::string log = cluster.NodeLog(node);
    if (std::regex_search(log, m, line)) return std::stoi(m[1]);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return 0;
}

class ObservabilityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::ClusterOptions o;
    o.model = kModel;
    o.nodes = 2;
    o.node_args = {"--metrics", "127.0.0.1:0"};
    absl::Status s = cluster_.Start(o);
    ASSERT_TRUE(s.ok()) << s;
    v1::GenerateRequest r;
    r.set_prompt("Once upon a time");
    r.set_n_predict(24);
    r.mutable_sampling()->set_top_p(1);
    r.mutable_sampling()->set_repeat_penalty(1);
    auto g = RemoteGenerate(cluster_.address(), r, nullptr);
    ASSERT_TRUE(g.ok()) << g.status();
    ASSERT_EQ(g->ids.size(), 24u);
    // Two heartbeats (500 ms apart) after the tokens carry the counters that moved.
    std::this_thread::sleep_for(std::chrono::milliseconds(1300));
  }

  testing::LocalCluster cluster_;
};

TEST_F(ObservabilityTest, NodeMetricsPassPromtoolAndCountTheWork) {
  const bool promtool = std::system("command -v promtool >/dev/null 2>&1") == 0;
  std::string all;
  for (size_t node = 0; node < 2; ++node) {
    const int port = MetricsPort(cluster_, node);
    ASSERT_GT(port, 0) << cluster_.NodeLog(node);
    const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/metrics";
    Output text = Shell("curl -sf " + url);
    ASSERT_EQ(text.exit_code, 0) << text.text;
    for (const char* family :
         {"tandem_node_frames_total", "tandem_node_tokens_total",
          "tandem_node_compute_seconds_total", "tandem_node_queue_seconds_total",
          "tandem_node_bytes_sent_total", "tandem_node_sessions",
          "tandem_node_next_hop_rtt_seconds", "tandem_node_batch_seconds"}) {
      EXPECT_THAT(text.text, HasSubstr(std::string("# TYPE ") + family)) << family;
    }
    EXPECT_THAT(text.text, ::testing::Not(HasSubstr("tandem_node_tokens_total 0\n")));
    all += text.text;
    if (promtool) {
      Output check = Shell("curl -sf " + url + " | promtool check metrics");
      EXPECT_EQ(check.exit_code, 0) << check.text << "\n" << text.text;
    }
  }
  // The first stage sent activations downstream; the last sent none.
  EXPECT_THAT(all, HasSubstr("tandem_node_layer_first 0\n"));
  EXPECT_THAT(all, HasSubstr("tandem_node_bytes_sent_total 0\n"));
  if (!promtool) GTEST_SKIP() << "promtool is not installed (deploy/setup.sh installs it)";
}

TEST_F(ObservabilityTest, StatusShowsMeasuredStagesAsJsonAndAsATable) {
  const std::string binary = testing::TandemBinary();
  Output json = Shell(binary + " status --coordinator " + cluster_.address() + " --json");
  ASSERT_EQ(json.exit_code, 0) << json.text;
  const nlohmann::json c = nlohmann::json::parse(json.text);
  EXPECT_TRUE(c["ready"].get<bool>());
  EXPECT_EQ(c["n_layers"], 5);
  ASSERT_EQ(c["stages"].size(), 2u);
  const auto& first = c["stages"][0];
  EXPECT_GT(first["compute_ms"].get<double>(), 0) << c.dump(2);
  EXPECT_GE(first["queue_ms"].get<double>(), 0) << c.dump(2);
  EXPECT_GT(first["hop_bytes_per_token"].get<double>(), 0) << c.dump(2);
  EXPECT_GT(first["hop_ms"].get<double>(), 0) << c.dump(2);
  EXPECT_TRUE(c["stages"][1]["hop_ms"].is_null());
  EXPECT_EQ(c["measured"]["tokens_generated"], 24);
  EXPECT_GT(c["measured"]["ttft_ms"].get<double>(), 0);
  ASSERT_EQ(c["nodes"].size(), 2u);
  for (const auto& n : c["nodes"]) EXPECT_EQ(n["state"], "serving");
  std::vector<std::string> kinds;
  for (const auto& e : c["events"]) kinds.push_back(e["kind"]);
  EXPECT_THAT(kinds, ::testing::ElementsAre("joined", "joined", "planned"));

  Output table = Shell(binary + " status --coordinator " + cluster_.address());
  ASSERT_EQ(table.exit_code, 0) << table.text;
  EXPECT_THAT(table.text, HasSubstr("ready"));
  EXPECT_THAT(table.text, HasSubstr(first["node_id"].get<std::string>()));
  EXPECT_THAT(table.text, HasSubstr("serving"));
  EXPECT_THAT(table.text, HasSubstr("[0, "));
  EXPECT_THAT(table.text, HasSubstr("planned"));
}

TEST_F(ObservabilityTest, ADeadNodeStaysListedAsDead) {
  ASSERT_EQ(::kill(cluster_.node_pids()[1], SIGKILL), 0);
  const std::string binary = testing::TandemBinary();
  // The coordinator declares a node dead after 3 s of silence.
  for (int i = 0; i < 100; ++i) {
    auto s = RemoteStatus(cluster_.address());
    if (s.ok() && s->dead_nodes_size() == 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  Output json = Shell(binary + " status --coordinator " + cluster_.address() + " --json");
  ASSERT_EQ(json.exit_code, 0) << json.text;
  const nlohmann::json c = nlohmann::json::parse(json.text);
  std::vector<std::string> states, kinds;
  for (const auto& n : c["nodes"]) states.push_back(n["state"]);
  for (const auto& e : c["events"]) kinds.push_back(e["kind"]);
  EXPECT_THAT(states, ::testing::Contains("dead")) << c.dump(2);
  EXPECT_THAT(kinds, ::testing::Contains("died")) << c.dump(2);
}

// The state `tandem status --json` gives node `id`, or what went wrong.
std::string StateOf(const std::string& coordinator, const std::string& id) {
  const testing::CommandResult r =
      testing::RunTandem("status --coordinator " + coordinator + " --json");
  if (r.exit_code != 0) return "(tandem status failed: " + r.err + ")";
  const nlohmann::json c = nlohmann::json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  if (c.is_discarded()) return "(not JSON: " + r.out + ")";
  for (const auto& n : c["nodes"]) {
    if (n["node_id"] == id) return n["state"].get<std::string>();
  }
  return "(" + id + " is not listed: " + r.out + ")";
}

// stories260K has 5 layers and the even split gives every node one: a sixth node that
// registers after the plan gets none. It is healthy and waits on standby (it used to read
// "joining" for as long as it lived); when a planned node dies it takes layers and serves.
TEST(ObservabilityStandbyTest, ANodeThePlanGivesNoLayersIsOnStandbyUntilItIsNeeded) {
  testing::LocalCluster cluster;
  testing::ClusterOptions o;
  o.model = kModel;
  o.nodes = 5;
  o.planner = "even";
  absl::Status s = cluster.Start(o);
  ASSERT_TRUE(s.ok()) << s;
  ASSERT_EQ(cluster.status().stages_size(), 5);
  cluster.StartNode(kModel);
  std::string extra;
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        extra.clear();
        auto st = RemoteStatus(cluster.address());
        if (!st.ok()) return false;
        for (const auto& n : st->nodes()) {
          if (n.address() == cluster.NodeAddress(5)) extra = n.node_id();
        }
        return !extra.empty();
      },
      std::chrono::seconds(20)))
      << cluster.NodeLog(5);
  // The coordinator decides within a tick or two of the registration.
  std::string state;
  testing::WaitFor(
      [&] {
        state = StateOf(cluster.address(), extra);
        return state == "standby";
      },
      std::chrono::seconds(5));
  EXPECT_EQ(state, "standby");
  // It stays so: not a moment between two states.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  auto st = RemoteStatus(cluster.address());
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_TRUE(st->ready());
  EXPECT_EQ(st->stages_size(), 5);
  for (const auto& n : st->nodes()) {
    EXPECT_EQ(n.state(), n.node_id() == extra ? "standby" : "serving") << n.node_id();
  }
  Output table = Shell(testing::TandemBinary() + " status --coordinator " + cluster.address());
  EXPECT_THAT(table.text, ::testing::ContainsRegex(extra + " +127\\.0\\.0\\.1:[0-9]+ +standby"))
      << table.text;

  // A planned node dies: the even split over the five left includes the standby node.
  ASSERT_EQ(::kill(cluster.node_pids()[2], SIGKILL), 0);
  testing::WaitFor(
      [&] {
        state = StateOf(cluster.address(), extra);
        return state == "serving";
      },
      std::chrono::seconds(20));
  EXPECT_EQ(state, "serving") << cluster.NodeLog(5);
}

}  // namespace
}  // namespace tandem
