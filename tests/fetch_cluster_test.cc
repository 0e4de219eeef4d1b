// Nodes without the model file (`tandem node --cache-dir`), in real clusters on 127.0.0.1:
// they fetch only their layers' tensors from the coordinator, answer as one process does,
// catch a corrupted chunk, resume a killed transfer, and reuse their cache on a restart.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <regex>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "model/gguf.h"
#include "net/client.h"
#include "nlohmann/json.hpp"
#include "tests/local_cluster.h"

namespace tandem {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using testing::RunTandem;

constexpr char kVocab[] = TANDEM_SHARED_DIR "/models/stories260K-f32.gguf";
constexpr int kLayers = 4;

class FetchClusterTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_TRUE(fs::exists(kVocab)) << kVocab << " is missing: the tests need ../shared";
    dir_ =
        new fs::path(fs::temp_directory_path() / absl::StrCat("tandem_fetch_cluster_", ::getpid()));
    fs::create_directories(*dir_);
    model_ = new std::string((*dir_ / "model.gguf").string());
    // About 28 MiB of q4_0 weights in 4 layers; the feed-forward matrices span two chunks.
    const auto made =
        RunTandem(absl::StrCat("make-model --n-embd 1024 --n-layer ", kLayers,
                               " --n-head 8 --n-head-kv 4 --n-ff 2816 --type q4_0 --vocab-from ",
                               kVocab, " -o ", *model_));
    ASSERT_EQ(made.exit_code, 0) << made.err;
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
    delete model_;
  }

  // Bytes of the tensors a stage of [first, last) reads, counted from the model file by
  // name: its layers, the embedding on the first stage, the norm and head on the last.
  static uint64_t StageBytes(int first, int last) {
    auto file = GgufFile::Open(*model_);
    EXPECT_TRUE(file.ok());
    const bool tied = (*file)->FindTensor("output.weight") == nullptr;
    uint64_t bytes = 0;
    for (const GgufTensor& t : (*file)->tensors()) {
      std::smatch m;
      const std::regex block("^blk\\.([0-9]+)\\.");
      if (std::regex_search(t.name, m, block)) {
        const int layer = std::stoi(m[1]);
        if (layer >= first && layer < last) bytes += t.size_bytes;
      } else if (t.name == "token_embd.weight") {
        if (first == 0 || (last == kLayers && tied)) bytes += t.size_bytes;
      } else if (t.name == "output.weight" || t.name == "output_norm.weight") {
        if (last == kLayers) bytes += t.size_bytes;
      } else {
        bytes += t.size_bytes;
      }
    }
    return bytes;
  }

  // Allocated bytes of every file under `dir`.
  static uint64_t DiskBytes(const fs::path& dir) {
    uint64_t bytes = 0;
    for (const auto& e : fs::recursive_directory_iterator(dir)) {
      struct stat st;
      if (e.is_regular_file() && ::stat(e.path().c_str(), &st) == 0) {
        bytes += static_cast<uint64_t>(st.st_blocks) * 512;
      }
    }
    return bytes;
  }

  static Json Generate(const std::string& source, const std::string& sampling) {
    const auto r = RunTandem(
        absl::StrCat("generate ", source, " -p \"Once upon a time\" -n 16 ", sampling, " --json"));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.exit_code == 0 ? Json::parse(r.out) : Json();
  }

  // The greedy and the seeded answers of the cluster are those of one process.
  static void ExpectSameAnswers(const std::string& address) {
    for (const std::string sampling : {"--temp 0", "--temp 0.8 --seed 7"}) {
      const Json local = Generate("-m " + *model_, sampling);
      const Json remote = Generate("--coordinator " + address, sampling);
      EXPECT_EQ(remote["ids"], local["ids"]) << sampling;
      EXPECT_FALSE(local["ids"].empty());
    }
  }

  // The sum of `key=` over the node's "fetch" lines (one per stage it prepared), or -1.
  static int64_t FetchCounter(const std::string& log, const std::string& key) {
    const std::regex line(
        "tandem node: fetch bytes_received=([0-9]+) bytes_resumed=([0-9]+) "
        "refetched=([0-9]+)");
    const int group = key == "bytes_received" ? 1 : key == "bytes_resumed" ? 2 : 3;
    int64_t sum = -1;
    for (auto it = std::sregex_iterator(log.begin(), log.end(), line); it != std::sregex_iterator();
         ++it) {
      sum = std::max<int64_t>(sum, 0) + std::stoll((*it)[group]);
    }
    return sum;
  }

  static std::string CacheArg(const fs::path& cache) { return cache.string(); }

  // Kills node `index` and collects its exit, so the cluster does not report it as a failure.
  static void KillNode(testing::LocalCluster& cluster, size_t index) {
    ASSERT_EQ(::kill(cluster.node_pids()[index], SIGKILL), 0);
    const std::string name = absl::StrCat("node", index, " ");
    for (int i = 0; i < 200; ++i) {
      const std::string exited = cluster.CheckExited();
      if (exited.rfind(name, 0) == 0) return;
      ASSERT_EQ(exited, "") << "another process ended";
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    FAIL() << "node" << index << " did not exit";
  }

  static fs::path* dir_;
  static std::string* model_;
};

fs::path* FetchClusterTest::dir_ = nullptr;
std::string* FetchClusterTest::model_ = nullptr;

TEST_F(FetchClusterTest, NodesWithoutTheModelFetchOnlyTheirLayersAndAnswerAsOneProcess) {
  const fs::path cache_a = *dir_ / "split_a", cache_b = *dir_ / "split_b";
  testing::LocalCluster cluster;
  testing::ClusterOptions o;
  o.model = *model_;
  o.nodes = 2;
  o.split = "1,3";
  o.coordinator_args = {"--ctx-size", "64"};
  ASSERT_TRUE(cluster.StartCoordinator(o).ok());
  cluster.StartNode("", 1, {"--cache-dir", CacheArg(cache_a)});
  cluster.StartNode("", 1, {"--cache-dir", CacheArg(cache_b)});
  const absl::Status ready = cluster.WaitReady(60000);
  ASSERT_TRUE(ready.ok()) << ready.message() << "\n" << cluster.NodeLog(0) << cluster.NodeLog(1);
  ExpectSameAnswers(cluster.address());

  // Each node holds its stage's tensors and the header, within 5% of the stage's bytes.
  const auto& stages = cluster.status().stages();
  ASSERT_EQ(stages.size(), 2);
  for (size_t i = 0; i < 2; ++i) {
    const std::string log = cluster.NodeLog(i);
    const fs::path cache = i == 0 ? cache_a : cache_b;
    int first = -1, last = -1;
    for (const auto& st : stages) {
      if (log.find("serving at " + st.address()) != std::string::npos) {
        first = st.layer_first();
        last = st.layer_last();
      }
    }
    ASSERT_GE(first, 0) << log;
    const uint64_t stage_bytes = StageBytes(first, last);
    const uint64_t disk = DiskBytes(cache);
    std::printf("[ fetch ] node %zu: layers [%d, %d), %llu stage bytes, %llu bytes on disk\n", i,
                first, last, static_cast<unsigned long long>(stage_bytes),
                static_cast<unsigned long long>(disk));
    // Tensors with equal bytes (norms of ones) are one blob: at most the stage moves.
    EXPECT_GE(disk, stage_bytes * 9 / 10);
    EXPECT_LE(disk, stage_bytes + stage_bytes / 20) << "more than the stage plus 5% on disk";
    const int64_t received = FetchCounter(log, "bytes_received");
    EXPECT_LE(received, static_cast<int64_t>(stage_bytes)) << log;
    EXPECT_GE(received, static_cast<int64_t>(stage_bytes * 9 / 10)) << log;
  }
}

// Two nodes without the model file, rate-limited: the coordinator has both fetch at once
// (before configuring them one by one), and while they fetch the cluster's JSON
// (`tandem status --json`, as GET /v1/cluster) shows each node's "fetch" progress; after,
// the rate its fetch measured.
TEST_F(FetchClusterTest, StagesFetchAtOnceAndTheirProgressIsInTheClusterJson) {
  const fs::path cache_a = *dir_ / "progress_a", cache_b = *dir_ / "progress_b";
  testing::LocalCluster cluster;
  testing::ClusterOptions o;
  o.model = *model_;
  o.nodes = 2;
  o.split = "2,2";
  o.coordinator_args = {"--ctx-size", "64"};
  ASSERT_TRUE(cluster.StartCoordinator(o).ok());
  // About 14 MB a stage at 3 MB/s: several heartbeats (every 0.5 s) while they fetch.
  constexpr double kRate = 3e6;
  cluster.StartNode("", 1, {"--cache-dir", CacheArg(cache_a), "--fetch-rate", "3000000"});
  cluster.StartNode("", 1, {"--cache-dir", CacheArg(cache_b), "--fetch-rate", "3000000"});
  int polls_fetching = 0, polls_both = 0;
  uint64_t largest_total = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  Json c;
  while (std::chrono::steady_clock::now() < deadline) {
    const auto r = RunTandem(absl::StrCat("status --coordinator ", cluster.address(), " --json"));
    if (r.exit_code != 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    c = Json::parse(r.out);
    int active = 0;
    for (const Json& n : c["nodes"]) {
      if (!n.contains("fetch")) continue;
      const Json& f = n["fetch"];
      ASSERT_LE(f["bytes_done"].get<uint64_t>(), f["bytes_total"].get<uint64_t>()) << f;
      if (f["active"].get<bool>()) {
        ++active;
        largest_total = std::max(largest_total, f["bytes_total"].get<uint64_t>());
      }
    }
    polls_fetching += active > 0;
    polls_both += active == 2;
    if (c["ready"].get<bool>()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(c["ready"].get<bool>()) << c.dump() << cluster.NodeLog(0) << cluster.NodeLog(1);
  EXPECT_GT(polls_fetching, 0) << "no poll saw a node fetching";
  EXPECT_GT(polls_both, 0) << "the two stages never fetched at the same time";
  EXPECT_GT(largest_total, 0u);
  EXPECT_LE(largest_total, StageBytes(0, kLayers));
  const std::string coordinator_log = testing::ReadFile(cluster.dir() + "/coordinator.log");
  EXPECT_NE(coordinator_log.find("2 stages fetched their layers at once"), std::string::npos)
      << coordinator_log;
  // Done: every node says so, with the rate its transfer measured (under the limit).
  for (int i = 0; i < 50; ++i) {
    const auto r = RunTandem(absl::StrCat("status --coordinator ", cluster.address(), " --json"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    c = Json::parse(r.out);
    bool settled = true;
    for (const Json& n : c["nodes"]) {
      settled &= n.contains("fetch") && !n["fetch"]["active"].get<bool>() &&
                 n["fetch"]["bytes_per_s"].is_number();
    }
    if (settled) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(c["nodes"].size(), 2u) << c.dump();
  for (const Json& n : c["nodes"]) {
    ASSERT_TRUE(n.contains("fetch")) << n;
    EXPECT_FALSE(n["fetch"]["active"].get<bool>()) << n;
    EXPECT_EQ(n["fetch"]["bytes_done"], n["fetch"]["bytes_total"]) << n;
    ASSERT_TRUE(n["fetch"]["bytes_per_s"].is_number()) << n;
    EXPECT_GT(n["fetch"]["bytes_per_s"].get<double>(), 0) << n;
    EXPECT_LE(n["fetch"]["bytes_per_s"].get<double>(), 2 * kRate) << n;
  }
  // The table has the column.
  const auto table = RunTandem(absl::StrCat("status --coordinator ", cluster.address()));
  EXPECT_NE(table.out.find("fetch MiB"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("done"), std::string::npos) << table.out;
  ExpectSameAnswers(cluster.address());
}

TEST_F(FetchClusterTest, CorruptedChunkIsDetectedAndFetchedAgain) {
  const fs::path cache = *dir_ / "corrupt";
  testing::LocalCluster cluster;
  testing::ClusterOptions o;
  o.model = *model_;
  o.nodes = 1;
  // The header takes the first chunk; the fifth is inside the tensors.
  o.coordinator_args = {"--ctx-size", "64", "--test-corrupt-chunk", "5"};
  ASSERT_TRUE(cluster.StartCoordinator(o).ok());
  cluster.StartNode("", 1, {"--cache-dir", CacheArg(cache)});
  const absl::Status ready = cluster.WaitReady(60000);
  ASSERT_TRUE(ready.ok()) << ready.message() << "\n" << cluster.NodeLog(0);
  const std::string log = cluster.NodeLog(0);
  EXPECT_NE(log.find("SHA-256 of the bytes received differs; fetching it again"), std::string::npos)
      << log;
  EXPECT_EQ(FetchCounter(log, "refetched"), 1) << log;
  ExpectSameAnswers(cluster.address());
}

TEST_F(FetchClusterTest, KilledTransferResumesAndRestartReusesTheCache) {
  const fs::path cache = *dir_ / "resume";
  const uint64_t model_bytes = StageBytes(0, kLayers);
  testing::LocalCluster cluster;
  testing::ClusterOptions o;
  o.model = *model_;
  o.nodes = 1;
  o.coordinator_args = {"--ctx-size", "64"};
  ASSERT_TRUE(cluster.StartCoordinator(o).ok());
  // Slow enough (4 MB/s) to be killed half way.
  const pid_t slow =
      cluster.StartNode("", 1, {"--cache-dir", CacheArg(cache), "--fetch-rate", "4000000"});
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (fs::exists(cache / "blobs") ? DiskBytes(cache / "blobs") < model_bytes / 3 : true) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << cluster.NodeLog(0);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(cluster.node_pids()[0], slow);
  KillNode(cluster, 0);
  const uint64_t before = DiskBytes(cache);
  EXPECT_LT(before, model_bytes) << "the transfer had finished before the kill";

  // Started again: only what is missing moves.
  cluster.StartNode("", 1, {"--cache-dir", CacheArg(cache)});
  absl::Status ready = cluster.WaitReady(60000);
  ASSERT_TRUE(ready.ok()) << ready.message();
  // The plan must be the new node's: wait until the coordinator dropped the killed one.
  auto serves_on = [&](size_t node) {
    for (int i = 0; i < 300; ++i) {
      const std::string log = cluster.NodeLog(node);
      auto s = RemoteStatus(cluster.address());
      if (s.ok() && s->ready() && s->stages_size() == 1 &&
          log.find("serving at " + s->stages(0).address()) != std::string::npos) {
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  };
  ASSERT_TRUE(serves_on(1)) << cluster.NodeLog(1);
  const std::string resumed = cluster.NodeLog(1);
  const int64_t received = FetchCounter(resumed, "bytes_received");
  const int64_t from_partial = FetchCounter(resumed, "bytes_resumed");
  std::printf("[ fetch ] killed after %llu bytes on disk; restart received %lld, resumed %lld\n",
              static_cast<unsigned long long>(before), static_cast<long long>(received),
              static_cast<long long>(from_partial));
  EXPECT_GT(received, 0) << resumed;
  EXPECT_GT(from_partial, 0) << "nothing was taken from a partial file";
  // What the first node had stored is not sent again.
  EXPECT_LE(received, static_cast<int64_t>(model_bytes - (before - before / 10))) << resumed;
  ExpectSameAnswers(cluster.address());

  // A restart with the same plan moves nothing.
  KillNode(cluster, 1);
  cluster.StartNode("", 1, {"--cache-dir", CacheArg(cache)});
  ASSERT_TRUE(serves_on(2)) << cluster.NodeLog(2)
                            << testing::ReadFile(cluster.dir() + "/coordinator.log");
  EXPECT_EQ(FetchCounter(cluster.NodeLog(2), "bytes_received"), 0) << cluster.NodeLog(2);
  EXPECT_EQ(FetchCounter(cluster.NodeLog(2), "refetched"), 0);
  ExpectSameAnswers(cluster.address());
}

// Under mutual TLS a node fetches from a peer too: the first node fetches the whole model
// from the coordinator; a second joins, the plan splits the layers, and the second takes
// its layers from the first node's cache over the first node's TLS listener (the role
// check lets a member node fetch), checking the identity the coordinator gave for it.
TEST_F(FetchClusterTest, UnderTlsANodeFetchesFromAPeer) {
  const fs::path cache_a = *dir_ / "tls_a", cache_b = *dir_ / "tls_b";
  testing::LocalCluster cluster;
  testing::ClusterOptions o;
  o.model = *model_;
  o.nodes = 1;
  o.tls = true;
  o.coordinator_args = {"--ctx-size", "64"};
  ASSERT_TRUE(cluster.StartCoordinator(o).ok());
  cluster.StartNode("", 1, {"--cache-dir", CacheArg(cache_a)});
  absl::Status ready = cluster.WaitReady(60000);
  ASSERT_TRUE(ready.ok()) << ready.message() << "\n" << cluster.NodeLog(0);
  ASSERT_EQ(cluster.status().stages_size(), 1);
  EXPECT_GT(FetchCounter(cluster.NodeLog(0), "bytes_received"), 0);

  cluster.StartNode("", 1, {"--cache-dir", CacheArg(cache_b)});
  // The even planner gives the joining node half of the layers at once.
  std::string log_b;
  const bool fetched = testing::WaitFor(
      [&] {
        log_b = cluster.NodeLog(1);
        return FetchCounter(log_b, "bytes_received") > 0 &&
               log_b.find("serving at") != std::string::npos;
      },
      std::chrono::seconds(60));
  ASSERT_TRUE(fetched) << log_b << testing::ReadFile(cluster.dir() + "/coordinator.log");
  ready = cluster.WaitReady(60000);
  ASSERT_TRUE(ready.ok()) << ready.message();
  // What the second node received came from the first node, not the coordinator: its
  // "layers [..): ... from ADDRESS N MiB" line names the peer, never "(coordinator)".
  const std::string peer = cluster.NodeAddress(0);
  ASSERT_FALSE(peer.empty());
  const std::regex line("tandem node: layers \\[[^\n]* from ([^\n]*)");
  std::string sources;
  for (auto it = std::sregex_iterator(log_b.begin(), log_b.end(), line);
       it != std::sregex_iterator(); ++it) {
    sources += (*it)[1].str() + "\n";
  }
  EXPECT_NE(sources.find(peer + " "), std::string::npos)
      << "nothing from the peer at " << peer << ":\n"
      << log_b;
  EXPECT_EQ(sources.find("(coordinator)"), std::string::npos) << log_b;
  EXPECT_EQ(FetchCounter(log_b, "refetched"), 0) << log_b;
}

TEST_F(FetchClusterTest, NodeWithNeitherModelNorCacheIsOneClearLine) {
  const auto r = RunTandem("node --coordinator 127.0.0.1:1");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--cache-dir"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace tandem
