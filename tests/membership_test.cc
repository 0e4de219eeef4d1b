// Membership that survives what volunteer machines do every day, with real processes and
// real gRPC on 127.0.0.1: a node restarted at the same address, the coordinator
// restarted, a node hung (SIGSTOP), a node drained (SIGTERM) and a node joining mid-run.
// Every answer that survives is compared with the same request's undisturbed answer, and
// no node may keep a session afterwards.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "net/client.h"
#include "net/link_security.h"
#include "tests/golden_support.h"
#include "tests/local_cluster.h"

namespace tandem {
namespace {

using Clock = std::chrono::steady_clock;
using testing::ClusterOptions;
using ::testing::HasSubstr;
using testing::LocalCluster;
using testing::SamplingRequest;
using testing::SharedPath;
using testing::WaitFor;

const std::string kModel = SharedPath("models/stories260K-f32.gguf");
constexpr int kTokens = 100;  // with the prompt, within the model's context of 128

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

ClusterOptions Options(int nodes, const std::string& planner = "even") {
  ClusterOptions o;
  o.model = kModel;
  o.nodes = nodes;
  o.planner = planner;
  return o;
}

v1::StatusResponse StatusOf(const LocalCluster& cluster) {
  auto s = RemoteStatus(cluster.address(), 1000);
  return s.ok() ? *s : v1::StatusResponse();
}

std::string IdAt(const v1::StatusResponse& s, const std::string& address) {
  for (const auto& n : s.nodes()) {
    if (n.address() == address) return n.node_id();
  }
  return "";
}

bool HasEvent(const v1::StatusResponse& s, const std::string& kind) {
  for (const auto& e : s.events()) {
    if (e.kind() == kind) return true;
  }
  return false;
}

// The index of the node process serving `address`.
int NodeIndexAt(const LocalCluster& cluster, const std::string& address) {
  for (size_t i = 0; i < cluster.node_pids().size(); ++i) {
    if (cluster.NodeAddress(i) == address) return static_cast<int>(i);
  }
  return -1;
}

// Waits until the cluster serves and no live node (nor the coordinator) holds a session.
bool NoSessionLeft(const LocalCluster& cluster) {
  return WaitFor(
      [&] {
        const v1::StatusResponse s = StatusOf(cluster);
        if (!s.ready() || s.measured().sessions_active() != 0) return false;
        for (const auto& n : s.nodes()) {
          if (n.sessions() != 0) return false;
        }
        return true;
      },
      std::chrono::seconds(10));
}

// A generation whose k-th token runs `at_token` (on the reading thread), with the time
// each token arrived.
struct TimedRun {
  absl::StatusOr<RemoteGeneration> out = absl::UnknownError("not run");
  std::vector<Clock::time_point> token_times;
};
TimedRun Generate(const LocalCluster& cluster, const v1::GenerateRequest& request, int k,
                  const std::function<void()>& at_token) {
  TimedRun run;
  run.out = RemoteGenerate(cluster.address(), request, [&](int32_t, const std::string&) {
    run.token_times.push_back(Clock::now());
    if (static_cast<int>(run.token_times.size()) == k && at_token) at_token();
  });
  return run;
}

std::string Logs(const LocalCluster& cluster) {
  std::string out =
      "--- coordinator.log ---\n" + testing::ReadFile(cluster.dir() + "/coordinator.log");
  for (size_t i = 0; i < cluster.node_pids().size(); ++i) {
    out += "--- node" + std::to_string(i) + ".log ---\n" + cluster.NodeLog(i);
  }
  return out;
}

// A node killed and started again at once at the same address is a new node: the
// coordinator drops the old record, plans the new process in, and the answer in flight
// is whole and identical.
TEST(MembershipTest, NodeRestartedAtTheSameAddressIsANewNode) {
  LocalCluster cluster;
  ASSERT_TRUE(cluster.Start(Options(2)).ok());
  const auto request = SamplingRequest("Once upon a time", kTokens, 0.0f, 1);
  auto baseline = RemoteGenerate(cluster.address(), request, nullptr);
  ASSERT_TRUE(baseline.ok()) << baseline.status();
  const std::string address = cluster.NodeAddress(1);
  const std::string old_id = IdAt(StatusOf(cluster), address);
  ASSERT_FALSE(old_id.empty());

  TimedRun run = Generate(cluster, request, 10, [&] {
    ::kill(cluster.node_pids()[1], SIGKILL);
    cluster.RestartNode(1);
  });
  ASSERT_TRUE(run.out.ok()) << run.out.status() << "\n" << Logs(cluster);
  EXPECT_EQ(run.out->ids, baseline->ids);

  // The new process at that address is planned in under a new id; the old one is dead.
  const auto restarted = Clock::now();
  v1::StatusResponse s;
  ASSERT_TRUE(WaitFor(
      [&] {
        s = StatusOf(cluster);
        const std::string id = IdAt(s, address);
        if (!s.ready() || id.empty() || id == old_id) return false;
        for (const auto& st : s.stages()) {
          if (st.node_id() == id) return true;
        }
        return false;
      },
      std::chrono::seconds(15)))
      << s.DebugString() << Logs(cluster);
  std::printf("[ restart ] the restarted node was planned in %.0f ms after the answer ended\n",
              Ms(Clock::now() - restarted));
  EXPECT_EQ(s.n_nodes(), 2);
  bool old_dead = false;
  for (const auto& n : s.dead_nodes()) old_dead |= n.node_id() == old_id;
  EXPECT_TRUE(old_dead) << s.DebugString();
  auto again = RemoteGenerate(cluster.address(), request, nullptr);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->ids, baseline->ids);
  EXPECT_TRUE(NoSessionLeft(cluster)) << StatusOf(cluster).DebugString();
}

// The coordinator killed and started again on its port: the request in flight gets a
// clear error; the nodes notice within a heartbeat, register again, and the cluster
// serves within two heartbeat intervals of the coordinator answering.
TEST(MembershipTest, CoordinatorRestartReformsWithinTwoHeartbeats) {
  LocalCluster cluster;
  ASSERT_TRUE(cluster.Start(Options(2)).ok());
  const auto request = SamplingRequest("Once upon a time", kTokens, 0.0f, 1);
  auto baseline = RemoteGenerate(cluster.address(), request, nullptr);
  ASSERT_TRUE(baseline.ok()) << baseline.status();
  const v1::StatusResponse before = StatusOf(cluster);

  absl::Status restarted;
  Clock::time_point spawned;
  TimedRun run = Generate(cluster, request, 10, [&] {
    restarted = cluster.RestartCoordinator();
    spawned = Clock::now();
  });
  ASSERT_TRUE(restarted.ok()) << restarted;
  ASSERT_FALSE(run.out.ok());
  EXPECT_EQ(run.out.status().code(), absl::StatusCode::kUnavailable) << run.out.status();
  EXPECT_THAT(std::string(run.out.status().message()), HasSubstr("went away mid-answer"));

  // When the new coordinator first answers, then when it serves again.
  Clock::time_point answering, ready;
  ASSERT_TRUE(
      WaitFor([&] { return RemoteStatus(cluster.address(), 200).ok(); }, std::chrono::seconds(20)));
  answering = Clock::now();
  v1::StatusResponse s;
  ASSERT_TRUE(WaitFor(
      [&] {
        s = StatusOf(cluster);
        return s.ready();
      },
      std::chrono::seconds(20)))
      << s.DebugString() << Logs(cluster);
  ready = Clock::now();
  std::printf(
      "[ re-form ] coordinator answering %.0f ms after its start; serving %.0f ms after that "
      "(heartbeat interval 500 ms)\n",
      Ms(answering - spawned), Ms(ready - answering));
  EXPECT_LE(Ms(ready - answering), 1000) << "not within two heartbeat intervals";
  EXPECT_EQ(s.n_nodes(), 2);
  EXPECT_EQ(s.dead_nodes_size(), 0);
  // New ids: none of the old run's.
  for (const auto& n : s.nodes()) {
    for (const auto& old : before.nodes()) EXPECT_NE(n.node_id(), old.node_id());
  }
  auto again = RemoteGenerate(cluster.address(), request, nullptr);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->ids, baseline->ids);
  EXPECT_TRUE(NoSessionLeft(cluster)) << StatusOf(cluster).DebugString();
}

// The same restart under mutual TLS (`tandem run --tls`): the CA persists in the
// coordinator's --state-dir, so the nodes register again with the certificates they
// joined with (no second join), get new ids under the same identities, and the cluster
// answers as before.
TEST(MembershipTest, CoordinatorRestartUnderTlsKeepsTheNodesCertificates) {
  // The cluster installs this process's certificate as a client; the other tests of this
  // binary run plaintext clusters, so it goes again at the end.
  struct PlaintextAfter {
    ~PlaintextAfter() { InstallLinkCredentials({}); }
  } plaintext_after;
  LocalCluster cluster;
  ClusterOptions o = Options(2);
  o.tls = true;
  ASSERT_TRUE(cluster.Start(o).ok());
  const auto request = SamplingRequest("Once upon a time", 24, 0.0f, 1);
  auto baseline = RemoteGenerate(cluster.address(), request, nullptr);
  ASSERT_TRUE(baseline.ok()) << baseline.status();
  const v1::StatusResponse before = StatusOf(cluster);
  ASSERT_EQ(before.nodes_size(), 2);

  ASSERT_TRUE(cluster.RestartCoordinator().ok());
  v1::StatusResponse s;
  ASSERT_TRUE(WaitFor(
      [&] {
        s = StatusOf(cluster);
        return s.ready() && s.n_nodes() == 2;
      },
      std::chrono::seconds(20)))
      << s.DebugString() << Logs(cluster);
  for (const auto& n : s.nodes()) {
    EXPECT_FALSE(n.identity().empty()) << n.DebugString();
    bool same_certificate = false;
    for (const auto& old : before.nodes()) {
      EXPECT_NE(n.node_id(), old.node_id());
      if (old.identity() == n.identity() && old.address() == n.address()) same_certificate = true;
    }
    EXPECT_TRUE(same_certificate) << n.DebugString() << before.DebugString();
  }
  for (size_t i = 0; i < cluster.node_pids().size(); ++i) {
    const std::string log = cluster.NodeLog(i);
    size_t joins = 0;
    for (size_t at = log.find("joined the cluster"); at != std::string::npos;
         at = log.find("joined the cluster", at + 1)) {
      ++joins;
    }
    EXPECT_EQ(joins, 1u) << log;
  }
  auto again = RemoteGenerate(cluster.address(), request, nullptr);
  ASSERT_TRUE(again.ok()) << again.status() << Logs(cluster);
  EXPECT_EQ(again->ids, baseline->ids);
}

// A hung node (SIGSTOP) in the middle of the pipeline: detected, fenced and routed around
// within 5 s, the session replayed with identical tokens; once it runs again it comes
// back after its backoff.
TEST(MembershipTest, HungNodeIsRoutedAroundWithinFiveSeconds) {
  LocalCluster cluster;
  ASSERT_TRUE(cluster.Start(Options(3)).ok());
  const auto request = SamplingRequest("Lily wanted to", kTokens, 0.9f, 4242);
  auto baseline = RemoteGenerate(cluster.address(), request, nullptr);
  ASSERT_TRUE(baseline.ok()) << baseline.status();
  const int victim = NodeIndexAt(cluster, StatusOf(cluster).stages(1).address());
  ASSERT_GE(victim, 0);
  const pid_t pid = cluster.node_pids()[victim];

  Clock::time_point stopped;
  TimedRun run = Generate(cluster, request, 10, [&] {
    ::kill(pid, SIGSTOP);
    stopped = Clock::now();
  });
  ::kill(pid, SIGCONT);
  ASSERT_TRUE(run.out.ok()) << run.out.status() << "\n" << Logs(cluster);
  EXPECT_EQ(run.out->ids, baseline->ids);
  // Tokens already on their way arrive at once; the wait is the longest gap after the stop.
  double gap = 0;
  for (size_t i = 10; i < run.token_times.size(); ++i) {
    gap = std::max(gap, Ms(run.token_times[i] - std::max(run.token_times[i - 1], stopped)));
  }
  std::printf(
      "[ hang ] longest wait for a token after SIGSTOP: %.0f ms (detection, re-plan "
      "and replay)\n",
      gap);
  EXPECT_LT(gap, 5000);
  v1::StatusResponse s = StatusOf(cluster);
  EXPECT_TRUE(HasEvent(s, "fenced")) << s.DebugString();
  // Running again, it rejoins the plan after its backoff.
  ASSERT_TRUE(WaitFor(
      [&] {
        s = StatusOf(cluster);
        return s.ready() && s.stages_size() == 3;
      },
      std::chrono::seconds(20)))
      << s.DebugString() << Logs(cluster);
  EXPECT_TRUE(NoSessionLeft(cluster)) << StatusOf(cluster).DebugString();
}

// SIGTERM drains a node: NOT_SERVING, its layers move, the session goes on elsewhere
// with identical tokens, and the node exits 0.
TEST(MembershipTest, DrainedNodeHandsOverAndExitsZero) {
  LocalCluster cluster;
  ASSERT_TRUE(cluster.Start(Options(3)).ok());
  const auto request = SamplingRequest("Once upon a time", kTokens, 0.0f, 1);
  auto baseline = RemoteGenerate(cluster.address(), request, nullptr);
  ASSERT_TRUE(baseline.ok()) << baseline.status();
  const std::string address = StatusOf(cluster).stages(1).address();
  const int victim = NodeIndexAt(cluster, address);
  ASSERT_GE(victim, 0);

  TimedRun run =
      Generate(cluster, request, 10, [&] { ::kill(cluster.node_pids()[victim], SIGTERM); });
  ASSERT_TRUE(run.out.ok()) << run.out.status() << "\n" << Logs(cluster);
  EXPECT_EQ(run.out->ids, baseline->ids);
  const int status = cluster.WaitNodeExit(victim, 15000);
  ASSERT_NE(status, -1) << "the drained node did not exit\n" << Logs(cluster);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_THAT(cluster.NodeLog(victim), HasSubstr("drained"));
  const v1::StatusResponse s = StatusOf(cluster);
  EXPECT_TRUE(s.ready());
  EXPECT_EQ(s.stages_size(), 2);
  for (const auto& st : s.stages()) EXPECT_NE(st.address(), address);
  EXPECT_TRUE(HasEvent(s, "draining")) << s.DebugString();
  EXPECT_TRUE(NoSessionLeft(cluster)) << StatusOf(cluster).DebugString();
}

// With the optimal planner one node serves everything. A second node joins mid-answer
// while the first hangs: the next plan (partition::Replan from the plan in force) moves
// the layers to the newcomer, and the answer comes out identical.
TEST(MembershipTest, NodeJoiningMidRunIsUsedByTheNextPlan) {
  LocalCluster cluster;
  ASSERT_TRUE(cluster.Start(Options(1, "optimal")).ok());
  const auto request = SamplingRequest("Tom and Sue", kTokens, 0.8f, 99);
  auto baseline = RemoteGenerate(cluster.address(), request, nullptr);
  ASSERT_TRUE(baseline.ok()) << baseline.status();
  const pid_t first = cluster.node_pids()[0];

  TimedRun run = Generate(cluster, request, 10, [&] {
    ::kill(first, SIGSTOP);
    cluster.StartNode(kModel);
  });
  ::kill(first, SIGCONT);
  ASSERT_TRUE(run.out.ok()) << run.out.status() << "\n" << Logs(cluster);
  EXPECT_EQ(run.out->ids, baseline->ids);
  const v1::StatusResponse s = StatusOf(cluster);
  ASSERT_GE(s.stages_size(), 1);
  const std::string joined = IdAt(s, cluster.NodeAddress(1));
  ASSERT_FALSE(joined.empty()) << s.DebugString();
  bool used = false;
  for (const auto& st : s.stages()) used |= st.node_id() == joined;
  EXPECT_TRUE(used) << s.DebugString();
  EXPECT_GE(s.plan_epoch(), 2u);
  EXPECT_TRUE(NoSessionLeft(cluster)) << StatusOf(cluster).DebugString();
}

}  // namespace
}  // namespace tandem
