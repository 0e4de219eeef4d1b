// Chaos: clients keep sessions (greedy and seeded) running on a 3-node cluster while its
// nodes are killed (SIGKILL) and restarted, hung (SIGSTOP, then SIGCONT) and drained
// (SIGTERM) and restarted, at random moments, the first and the last stage included.
// The checker: every session completes with exactly the tokens of the failure-free run;
// no stage ever saw a position out of order (a stage refuses and logs any frame whose
// position does not follow its session's last one, and the coordinator any result that
// does not); no node or coordinator keeps a session afterwards; no process is left
// behind. TANDEM_CHAOS_SEED picks another random schedule.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "net/client.h"
#include "tests/golden_support.h"
#include "tests/local_cluster.h"

namespace tandem {
namespace {

using Clock = std::chrono::steady_clock;
using testing::LocalCluster;
using testing::SamplingRequest;
using testing::SharedPath;
using testing::WaitFor;

constexpr int kClients = 4;
constexpr int kRequests = 32;
constexpr int kActions = 8;

v1::StatusResponse StatusOf(const LocalCluster& cluster) {
  auto s = RemoteStatus(cluster.address(), 1000);
  return s.ok() ? *s : v1::StatusResponse();
}

std::vector<v1::GenerateRequest> Requests() {
  const std::vector<std::string> prompts = {"Once upon a time", "The little dog", "Lily wanted to",
                                            "Tom and Sue",      "The sun was",    "A big red ball",
                                            "One day, a bird",  "Mom said"};
  std::vector<v1::GenerateRequest> out;
  for (int i = 0; i < kRequests; ++i) {
    // Greedy and seeded sampling alternate; lengths vary within the context of 128.
    out.push_back(SamplingRequest(prompts[i % prompts.size()], 40 + (i * 7) % 60,
                                  i % 2 ? 0.9f : 0.0f, 1000 + i));
  }
  return out;
}

struct Outcome {
  int request = 0;
  absl::StatusOr<RemoteGeneration> out = absl::UnknownError("not run");
};

TEST(ChaosTest, EverySessionSurvivesKillsHangsDrainsAndRestartsWithIdenticalTokens) {
  const char* env = std::getenv("TANDEM_CHAOS_SEED");
  const uint64_t seed = env ? std::strtoull(env, nullptr, 10) : 20261202;
  std::printf("[ chaos ] seed %llu (TANDEM_CHAOS_SEED)\n", static_cast<unsigned long long>(seed));
  std::mt19937_64 rng(seed);
  const auto started = Clock::now();
  auto at = [&] { return std::chrono::duration<double>(Clock::now() - started).count(); };

  std::vector<pid_t> all_pids;
  {
    LocalCluster cluster;
    testing::ClusterOptions o;
    o.model = SharedPath("models/stories260K-f32.gguf");
    o.nodes = 3;
    o.planner = "even";
    o.coordinator_args = {"--sessions", "8"};
    ASSERT_TRUE(cluster.Start(o).ok());
    const std::vector<v1::GenerateRequest> requests = Requests();

    // The failure-free run.
    std::vector<std::vector<int32_t>> expected(kRequests);
    {
      std::vector<std::thread> threads;
      std::vector<absl::Status> errors(kClients);
      for (int c = 0; c < kClients; ++c) {
        threads.emplace_back([&, c] {
          for (int i = c; i < kRequests; i += kClients) {
            auto out = RemoteGenerate(cluster.address(), requests[i], nullptr);
            if (!out.ok()) {
              errors[c] = out.status();
              return;
            }
            expected[i] = out->ids;
          }
        });
      }
      for (auto& t : threads) t.join();
      for (const auto& e : errors) ASSERT_TRUE(e.ok()) << e;
    }
    std::printf("[ chaos ] failure-free run of %d sessions done at %.1f s\n", kRequests, at());

    // The chaos run: clients cycle through the requests until the chaos is over, each
    // running at least its share of the 32.
    std::atomic<bool> chaos_over{false};
    std::mutex outcomes_mutex;
    std::vector<Outcome> outcomes;
    std::vector<std::thread> clients;
    for (int c = 0; c < kClients; ++c) {
      clients.emplace_back([&, c] {
        for (int k = 0;; ++k) {
          const int i = (c + k * kClients) % kRequests;
          if (k >= kRequests / kClients && chaos_over) return;
          Outcome outcome{i, RemoteGenerate(cluster.address(), requests[i], nullptr)};
          std::lock_guard<std::mutex> lock(outcomes_mutex);
          outcomes.push_back(std::move(outcome));
        }
      });
    }

    // The schedule: victims by stage (first, last, middle, in turn) and actions shuffled.
    enum Action { kKillRestart, kStopCont, kDrainRestart };
    std::vector<Action> actions = {kKillRestart, kKillRestart, kKillRestart,  kStopCont,
                                   kStopCont,    kStopCont,    kDrainRestart, kDrainRestart};
    std::shuffle(actions.begin(), actions.end(), rng);
    for (int a = 0; a < kActions; ++a) {
      std::this_thread::sleep_for(std::chrono::milliseconds(300 + rng() % 900));
      const v1::StatusResponse s = StatusOf(cluster);
      if (s.stages_size() == 0) continue;
      // The first stage, the last, the middle one, in turn.
      const int n = s.stages_size();
      const int stage = a % 3 == 0 ? 0 : a % 3 == 1 ? n - 1 : n / 2;
      int victim = -1;
      for (size_t i = 0; i < cluster.node_pids().size(); ++i) {
        if (cluster.NodeAddress(i) == s.stages(stage).address()) victim = static_cast<int>(i);
      }
      ASSERT_GE(victim, 0) << s.DebugString();
      const pid_t pid = cluster.node_pids()[victim];
      switch (actions[a]) {
        case kKillRestart: {
          const int pause_ms = static_cast<int>(rng() % 800);
          std::printf("[ chaos ] %5.1f s: SIGKILL node%d (stage %d of %d), restart after %d ms\n",
                      at(), victim, stage, n, pause_ms);
          ::kill(pid, SIGKILL);
          std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms));
          cluster.RestartNode(victim);
          break;
        }
        case kStopCont: {
          const int pause_ms = 1000 + static_cast<int>(rng() % 2500);
          std::printf("[ chaos ] %5.1f s: SIGSTOP node%d (stage %d of %d) for %d ms\n", at(),
                      victim, stage, n, pause_ms);
          ::kill(pid, SIGSTOP);
          std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms));
          ::kill(pid, SIGCONT);
          break;
        }
        case kDrainRestart: {
          std::printf("[ chaos ] %5.1f s: SIGTERM (drain) node%d (stage %d of %d), then restart\n",
                      at(), victim, stage, n);
          ::kill(pid, SIGTERM);
          const int status = cluster.WaitNodeExit(victim, 20000);
          EXPECT_TRUE(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0)
              << "node" << victim << " did not drain and exit 0 (" << status << ")";
          cluster.RestartNode(victim);
          break;
        }
      }
      // The cluster serves again before the next blow, on all three nodes when the one hit
      // is back in time (a fenced node sits out its backoff).
      EXPECT_TRUE(WaitFor([&] { return StatusOf(cluster).ready(); }, std::chrono::seconds(20)))
          << StatusOf(cluster).DebugString();
      WaitFor(
          [&] {
            const v1::StatusResponse now = StatusOf(cluster);
            return now.ready() && now.stages_size() == 3;
          },
          std::chrono::seconds(6));
    }
    chaos_over = true;
    for (auto& t : clients) t.join();
    std::printf("[ chaos ] %zu sessions under chaos done at %.1f s\n", outcomes.size(), at());

    // Every session whole and identical.
    EXPECT_GE(outcomes.size(), static_cast<size_t>(kRequests));
    int identical = 0;
    for (const Outcome& o : outcomes) {
      if (!o.out.ok()) {
        ADD_FAILURE() << "request " << o.request << " failed: " << o.out.status();
        continue;
      }
      EXPECT_EQ(o.out->ids, expected[o.request]) << "request " << o.request;
      identical += o.out->ids == expected[o.request];
    }
    std::printf("[ chaos ] %d of %zu sessions identical to the failure-free run\n", identical,
                outcomes.size());

    // No session left on the coordinator or any node.
    v1::StatusResponse s;
    EXPECT_TRUE(WaitFor(
        [&] {
          s = StatusOf(cluster);
          if (!s.ready() || s.measured().sessions_active() != 0) return false;
          for (const auto& n : s.nodes()) {
            if (n.sessions() != 0) return false;
          }
          return true;
        },
        std::chrono::seconds(10)))
        << "sessions left behind:\n"
        << s.DebugString();

    // Positions contiguous on every stage: no stage refused a frame (for a position gap,
    // an unknown session or anything else; only frames of replaced plans are turned away,
    // silently), and the coordinator refused no result.
    for (size_t i = 0; i < cluster.node_pids().size(); ++i) {
      EXPECT_THAT(cluster.NodeLog(i), ::testing::Not(::testing::HasSubstr("refused a frame")))
          << "node" << i;
    }
    EXPECT_THAT(testing::ReadFile(cluster.dir() + "/coordinator.log"),
                ::testing::Not(::testing::HasSubstr("refused a result")));
    if (::testing::Test::HasFailure()) cluster.KeepLogs();
    if (::testing::Test::HasFailure()) std::printf("[ chaos ] logs in %s\n", cluster.dir().c_str());
    all_pids = cluster.all_pids();
  }
  // No process left behind.
  for (pid_t pid : all_pids) {
    EXPECT_TRUE(::kill(pid, 0) == -1 && errno == ESRCH) << "process " << pid << " still exists";
  }
  std::printf("[ chaos ] done in %.1f s\n", at());
}

}  // namespace
}  // namespace tandem
