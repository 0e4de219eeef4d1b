// The coordinator's telemetry on its own: rates from heartbeats, node states, the
// /v1/cluster JSON and the Prometheus text (checked with promtool when it is installed).
#include "coordinator/telemetry.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include "coordinator/cluster_json.h"

namespace tandem {
namespace {

using Clock = std::chrono::steady_clock;
using ::testing::HasSubstr;

class TelemetryTest : public ::testing::Test {
 protected:
  TelemetryTest()
      : telemetry_({.suspect_after = std::chrono::milliseconds(1500),
                    .dead_retention = std::chrono::seconds(60),
                    .wall_ms = [this] { return wall_ms_; }},
                   [this] { return now_; }) {}

  NodeRecord Node(const std::string& id, bool alive = true) {
    NodeRecord n;
    n.id = id;
    n.address = "127.0.0.1:" + id.substr(id.size() - 1);
    n.profile.set_memory_bytes(1 << 20);
    n.last_seen = now_;
    n.alive = alive;
    n.serving = true;
    n.died = now_;
    return n;
  }

  void Beat(const std::string& id, uint64_t tokens, double compute_ms, double queue_ms,
            uint64_t bytes, double rtt_ms) {
    v1::HeartbeatRequest hb;
    hb.set_node_id(id);
    hb.set_serving(true);
    v1::StageCounters* c = hb.mutable_stage();
    c->set_frames(tokens);
    c->set_tokens(tokens);
    c->set_compute_ms(compute_ms);
    c->set_queue_ms(queue_ms);
    c->set_bytes_sent(bytes);
    c->set_hop_rtt_ms(rtt_ms);
    telemetry_.Heartbeat(hb);
  }

  // A ready two-stage status as the coordinator fills it before the telemetry.
  v1::StatusResponse TwoStages() {
    v1::StatusResponse s;
    s.set_ready(true);
    s.set_plan_epoch(2);
    s.set_model("m.gguf");
    s.set_n_layers(5);
    s.set_planner("even");
    s.set_n_ctx(128);
    s.set_sessions(2);
    s.set_predicted_ms_per_token(4);
    s.set_predicted_tokens_per_s(250);
    for (int i = 1; i <= 2; ++i) {
      v1::PlanStage* st = s.add_stages();
      st->set_node_id("node-" + std::to_string(i));
      st->set_address("127.0.0.1:" + std::to_string(i));
      st->set_layer_first(i == 1 ? 0 : 3);
      st->set_layer_last(i == 1 ? 3 : 5);
      st->set_memory_bytes(1000);
      st->set_node_memory_bytes(1 << 20);
      st->set_compute_ms(1.5);
      v1::NodeInfo* n = s.add_nodes();
      n->set_node_id(st->node_id());
      n->set_address(st->address());
    }
    return s;
  }

  Clock::time_point now_ = Clock::now();
  int64_t wall_ms_ = 1700000000000;
  ClusterTelemetry telemetry_;
};

TEST_F(TelemetryTest, HeartbeatCountersBecomePerStageRates) {
  Beat("node-1", 100, 50, 10, 1000, 0);
  Beat("node-1", 300, 250, 30, 5000, 0.8);  // 200 tokens: 1 ms each, 20 B each
  v1::StatusResponse s = TwoStages();
  telemetry_.Fill({Node("node-1"), Node("node-2")}, &s);
  const v1::PlanStage& st = s.stages(0);
  EXPECT_DOUBLE_EQ(st.measured_compute_ms(), 1.0);
  EXPECT_DOUBLE_EQ(st.queue_ms(), 0.1);
  EXPECT_DOUBLE_EQ(st.hop_bytes_per_token(), 20);
  EXPECT_DOUBLE_EQ(st.hop_ms(), 0.4);
  EXPECT_EQ(s.stages(1).measured_compute_ms(), 0);  // never reported
}

TEST_F(TelemetryTest, ImpossibleOrRestartedCountersAreNotRates) {
  Beat("node-1", 100, 50, 10, 1000, 0);
  Beat("node-1", 50, 60, 10, 1000, 0);  // fewer tokens: the node restarted
  Beat("node-1", 60, -5, 10, 1000, 0);  // negative time: ignored
  v1::StatusResponse s = TwoStages();
  telemetry_.Fill({Node("node-1"), Node("node-2")}, &s);
  EXPECT_DOUBLE_EQ(s.stages(0).measured_compute_ms(), 0.5);  // from zero to the first beat
  Beat("node-1", 60, 70, 10, 1000, 0);                       // 10 tokens after the restart, 10 ms
  s = TwoStages();
  telemetry_.Fill({Node("node-1"), Node("node-2")}, &s);
  EXPECT_DOUBLE_EQ(s.stages(0).measured_compute_ms(), 1.0);
}

TEST_F(TelemetryTest, TokensGiveRatesAndTimeToFirstToken) {
  telemetry_.Token(true, std::chrono::milliseconds(80));
  for (int i = 0; i < 9; ++i) {
    now_ += std::chrono::milliseconds(250);
    telemetry_.Token(false, std::chrono::milliseconds(250));
  }
  telemetry_.SetSessions(1, 2);
  v1::StatusResponse s = TwoStages();
  telemetry_.Fill({}, &s);
  EXPECT_EQ(s.measured().tokens_generated(), 10u);
  EXPECT_DOUBLE_EQ(s.measured().ttft_ms(), 80);
  EXPECT_DOUBLE_EQ(s.measured().ms_per_token(), 250);
  EXPECT_NEAR(s.measured().tokens_per_s(), 10 / 2.25, 1e-9);
  EXPECT_EQ(s.measured().sessions_active(), 1);
  EXPECT_EQ(s.measured().sessions_queued(), 2);
  now_ += std::chrono::seconds(10);  // idle: the rate decays to nothing
  s = TwoStages();
  telemetry_.Fill({}, &s);
  EXPECT_EQ(s.measured().tokens_per_s(), 0);
}

TEST_F(TelemetryTest, NodeStatesFollowHeartbeatsAndDeathsStayListedForAWhile) {
  NodeRecord serving = Node("node-1");
  NodeRecord joining = Node("node-2");
  joining.serving = false;
  NodeRecord dead = Node("node-3", /*alive=*/false);
  now_ += std::chrono::milliseconds(1000);
  NodeRecord suspect = Node("node-4");
  suspect.last_seen = now_ - std::chrono::milliseconds(2000);
  serving.last_seen = joining.last_seen = now_;
  EXPECT_EQ(telemetry_.StateOf(serving), NodeState::kServing);
  EXPECT_EQ(telemetry_.StateOf(joining), NodeState::kJoining);
  EXPECT_EQ(telemetry_.StateOf(suspect), NodeState::kSuspect);
  EXPECT_EQ(telemetry_.StateOf(dead), NodeState::kDead);
  // The planner gave node-2 no layers: it waits on standby (a dead node stays dead, and
  // one that still serves its last shard serves until it lets it go).
  telemetry_.SetWithoutLayers({"node-1", "node-2", "node-3"});
  EXPECT_EQ(telemetry_.StateOf(joining), NodeState::kStandby);
  EXPECT_EQ(telemetry_.StateOf(serving), NodeState::kServing);
  EXPECT_EQ(telemetry_.StateOf(dead), NodeState::kDead);
  telemetry_.SetNodes({serving, joining, dead, suspect});
  EXPECT_THAT(telemetry_.MetricsText(), HasSubstr("tandem_nodes{state=\"standby\"} 1\n"));
  telemetry_.SetWithoutLayers({});  // the next plan uses it
  EXPECT_EQ(telemetry_.StateOf(joining), NodeState::kJoining);

  v1::StatusResponse s;
  telemetry_.Fill({serving, joining, dead, suspect}, &s);
  ASSERT_EQ(s.dead_nodes_size(), 1);
  EXPECT_EQ(s.dead_nodes(0).node_id(), "node-3");
  EXPECT_EQ(s.dead_nodes(0).state(), "dead");
  now_ += std::chrono::seconds(61);
  s.Clear();
  telemetry_.Fill({dead}, &s);
  EXPECT_EQ(s.dead_nodes_size(), 0);
}

TEST_F(TelemetryTest, LoadingProgressShowsUntilTheShardIsLoaded) {
  v1::HeartbeatRequest hb;
  hb.set_node_id("node-1");
  hb.set_layers_loaded(3);
  hb.set_layers_to_load(8);
  telemetry_.Heartbeat(hb);
  v1::StatusResponse s = TwoStages();
  telemetry_.Fill({Node("node-1"), Node("node-2")}, &s);
  EXPECT_EQ(s.nodes(0).layers_loaded(), 3u);
  EXPECT_EQ(s.nodes(0).layers_to_load(), 8u);
  EXPECT_EQ(ClusterJson(s)["nodes"][0]["layers_to_load"], 8);
  hb.set_layers_loaded(9);  // more than there are: not believed
  telemetry_.Heartbeat(hb);
  s = TwoStages();
  telemetry_.Fill({Node("node-1"), Node("node-2")}, &s);
  EXPECT_EQ(s.nodes(0).layers_to_load(), 0u);
}

TEST_F(TelemetryTest, ClusterJsonHasEveryFieldTheDashboardReads) {
  telemetry_.NodeJoined("node-1", "127.0.0.1:1");
  telemetry_.NodeJoined("node-2", "127.0.0.1:2");
  telemetry_.NodeJoined("node-3", "127.0.0.1:3");
  wall_ms_ += 5;
  telemetry_.NodeDied("node-3");
  Beat("node-1", 10, 10, 1, 100, 0.5);
  Beat("node-1", 20, 20, 2, 200, 0.5);
  v1::StatusResponse s = TwoStages();
  telemetry_.Fill({Node("node-1"), Node("node-2"), Node("node-3", false)}, &s);
  const nlohmann::json j = ClusterJson(s);

  for (const char* key : {"ready", "reason", "model", "n_layers", "plan_epoch", "planner", "n_ctx",
                          "sessions", "predicted", "measured", "stages", "nodes", "events"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
  for (const char* key : {"tokens_per_s", "ms_per_token"}) {
    EXPECT_TRUE(j["predicted"].contains(key)) << key;
  }
  for (const char* key : {"tokens_per_s", "ms_per_token", "ttft_ms", "sessions_active",
                          "sessions_queued", "tokens_generated"}) {
    EXPECT_TRUE(j["measured"].contains(key)) << key;
  }
  ASSERT_EQ(j["stages"].size(), 2u);
  for (const char* key :
       {"node_id", "address", "layer_first", "layer_last", "memory_bytes", "node_memory_bytes",
        "predicted_compute_ms", "compute_ms", "queue_ms", "hop_ms", "hop_bytes_per_token"}) {
    EXPECT_TRUE(j["stages"][0].contains(key)) << key;
  }
  EXPECT_EQ(j["stages"][0]["compute_ms"], 1.0);
  EXPECT_EQ(j["stages"][0]["hop_bytes_per_token"], 10.0);
  EXPECT_EQ(j["stages"][0]["hop_ms"], 0.25);
  EXPECT_TRUE(j["stages"][1]["hop_ms"].is_null());  // the last stage has no next hop
  EXPECT_EQ(j["stages"][1]["layer_last"], 5);

  ASSERT_EQ(j["nodes"].size(), 3u);
  std::map<std::string, std::string> states;
  for (const auto& n : j["nodes"]) {
    for (const char* key : {"node_id", "address", "state", "rtt_ms", "memory_bytes"}) {
      EXPECT_TRUE(n.contains(key)) << key;
    }
    states[n["node_id"]] = n["state"];
  }
  EXPECT_EQ(states["node-1"], "serving");
  EXPECT_EQ(states["node-3"], "dead");

  ASSERT_EQ(j["events"].size(), 4u);
  const auto& died = j["events"][3];
  EXPECT_EQ(died["kind"], "died");
  EXPECT_EQ(died["time_ms"], wall_ms_);
  EXPECT_THAT(died["message"].get<std::string>(), HasSubstr("node-3"));
}

// The shape of the cluster stays while only its figures move (tokens flowing), and
// changes when a node dies: what GET /v1/cluster/events sends at once.
TEST_F(TelemetryTest, ClusterShapeIgnoresTheFiguresButNotADeath) {
  telemetry_.NodeJoined("node-1", "127.0.0.1:1");
  telemetry_.NodeJoined("node-2", "127.0.0.1:2");
  Beat("node-1", 10, 10, 1, 100, 0.5);
  v1::StatusResponse s = TwoStages();
  telemetry_.Fill({Node("node-1"), Node("node-2")}, &s);
  const nlohmann::json before = ClusterJson(s);
  Beat("node-1", 30, 50, 9, 700, 2.5);
  s = TwoStages();
  telemetry_.Fill({Node("node-1"), Node("node-2")}, &s);
  const nlohmann::json busier = ClusterJson(s);
  ASSERT_NE(before.dump(), busier.dump()) << "the figures moved";
  EXPECT_EQ(ClusterShape(before).dump(), ClusterShape(busier).dump());
  EXPECT_FALSE(ClusterShape(busier).contains("measured"));
  EXPECT_TRUE(ClusterShape(busier)["stages"][0].contains("layer_first"));
  EXPECT_FALSE(ClusterShape(busier)["stages"][0].contains("compute_ms"));

  wall_ms_ += 5;
  telemetry_.NodeDied("node-2");
  s = TwoStages();
  telemetry_.Fill({Node("node-1"), Node("node-2", false)}, &s);
  EXPECT_NE(ClusterShape(busier).dump(), ClusterShape(ClusterJson(s)).dump());
}

// Every sample line's metric belongs to a family with HELP and TYPE lines before it.
void ExpectWellFormedExposition(const std::string& text) {
  std::set<std::string> help, type;
  std::istringstream in(text);
  std::string line;
  int samples = 0;
  while (std::getline(in, line)) {
    if (line.rfind("# HELP ", 0) == 0) {
      help.insert(line.substr(7, line.find(' ', 7) - 7));
    } else if (line.rfind("# TYPE ", 0) == 0) {
      type.insert(line.substr(7, line.find(' ', 7) - 7));
    } else if (!line.empty()) {
      std::string name = line.substr(0, line.find_first_of("{ "));
      for (const char* suffix : {"_bucket", "_sum", "_count"}) {
        const std::string s = suffix;
        if (!type.count(name) && name.size() > s.size() &&
            name.compare(name.size() - s.size(), s.size(), s) == 0) {
          name.resize(name.size() - s.size());
        }
      }
      EXPECT_TRUE(help.count(name) && type.count(name)) << line;
      ++samples;
    }
  }
  EXPECT_GT(samples, 0);
}

// promtool (Debian's prometheus package) judges the text when it is installed.
void ExpectPromtoolAccepts(const std::string& text) {
  if (std::system("command -v promtool >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "promtool is not installed (deploy/setup.sh installs it)";
  }
  const std::string path = ::testing::TempDir() + "/tandem_metrics.txt";
  std::ofstream(path) << text;
  const std::string command = "promtool check metrics < " + path + " 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string out;
  char buf[512];
  while (std::fgets(buf, sizeof buf, pipe)) out += buf;
  EXPECT_EQ(::pclose(pipe), 0) << out << "\n" << text;
}

TEST_F(TelemetryTest, MetricsTextNamesEveryFamilyAndPassesPromtool) {
  telemetry_.Token(true, std::chrono::milliseconds(80));
  telemetry_.Token(false, std::chrono::milliseconds(20));
  telemetry_.Refused("invalid_request", "n_predict must be positive");
  Beat("node-1", 10, 10, 1, 100, 0.5);
  Beat("node-1", 20, 20, 2, 200, 0.5);
  telemetry_.SetNodes({Node("node-1"), Node("node-2", false)});
  const std::string text = telemetry_.MetricsText();
  for (const char* family :
       {"tandem_tokens_generated_total", "tandem_time_to_first_token_seconds",
        "tandem_time_per_token_seconds", "tandem_sessions", "tandem_nodes", "tandem_replans_total",
        "tandem_recoveries_total", "tandem_refused_requests_total",
        "tandem_stage_compute_seconds_total", "tandem_stage_queue_seconds_total",
        "tandem_hop_bytes_total", "tandem_hop_latency_seconds"}) {
    EXPECT_THAT(text, HasSubstr(std::string("# TYPE ") + family + " ")) << family;
  }
  EXPECT_THAT(text, HasSubstr("tandem_tokens_generated_total 2"));
  EXPECT_THAT(text, HasSubstr("tandem_nodes{state=\"dead\"} 1"));
  EXPECT_THAT(text, HasSubstr("tandem_refused_requests_total{reason=\"invalid_request\"} 1"));
  EXPECT_THAT(text, HasSubstr("tandem_stage_compute_seconds_total{node_id=\"node-1\"} 0.02"));
  ExpectWellFormedExposition(text);
  ExpectPromtoolAccepts(text);
}

}  // namespace
}  // namespace tandem
