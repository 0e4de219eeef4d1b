// The Tensors service and ModelFetcher in one process: a server on 127.0.0.1 serving a
// real model file, and a fetcher with a fresh cache folder.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <thread>

#include "absl/strings/str_cat.h"
#include "fetch/blob_cache.h"
#include "fetch/manifest.h"
#include "fetch/model_fetcher.h"
#include "fetch/tensor_service.h"
#include "model/fingerprint.h"
#include "model/hparams.h"

namespace tandem::fetch {
namespace {

namespace fs = std::filesystem;

constexpr char kModel[] = TANDEM_SHARED_DIR "/models/stories260K-f32.gguf";

class FetchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists(kModel)) << kModel << " is missing: the tests need ../shared";
    dir_ = fs::temp_directory_path() /
           absl::StrCat("tandem_fetch_test_", ::getpid(), "_",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    auto file = GgufFile::Open(kModel);
    ASSERT_TRUE(file.ok()) << file.status();
    model_ = std::move(*file);
    FingerprintOptions options;
    options.cache_dir = (dir_ / "digests").string();
    digests_ = LoadOrComputeModelDigests(*model_, options);
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
    fs::remove_all(dir_);
  }

  // Serves the model with `options`; returns the address.
  std::string Serve(TensorServiceOptions options) {
    if (server_) server_->Shutdown();
    service_ = std::make_unique<TensorService>(std::make_shared<ModelFileSource>(model_, digests_),
                                               options);
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    EXPECT_NE(port, 0);
    return absl::StrCat("127.0.0.1:", port);
  }

  std::unique_ptr<ModelFetcher> Open(const std::string& address) {
    auto f = ModelFetcher::Open({.coordinator = address, .cache_dir = (dir_ / "cache").string()});
    EXPECT_TRUE(f.ok()) << f.status();
    return f.ok() ? std::move(*f) : nullptr;
  }

  // Every tensor of `view` that holds data equals the model file's.
  void ExpectSameTensors(const GgufFile& view, size_t expected_with_data) {
    size_t with_data = 0;
    for (const GgufTensor& t : view.tensors()) {
      if (t.data == nullptr) continue;
      ++with_data;
      const GgufTensor* original = model_->FindTensor(t.name);
      ASSERT_NE(original, nullptr);
      ASSERT_EQ(t.size_bytes, original->size_bytes);
      EXPECT_EQ(std::memcmp(t.data, original->data, t.size_bytes), 0) << t.name;
    }
    EXPECT_EQ(with_data, expected_with_data);
  }

  int Layers() { return ReadHparams(*model_)->n_layer; }

  fs::path dir_;
  std::shared_ptr<const GgufFile> model_;
  ModelDigests digests_;
  std::unique_ptr<TensorService> service_;
  std::unique_ptr<grpc::Server> server_;
};

// A source that serves fewer streams at once than the node asks for refuses the rest with
// RESOURCE_EXHAUSTED; the node asks it again shortly instead of failing the stage (seen as a
// flaky failure under load: a stream that just ended may still count on the server).
TEST_F(FetchTest, ABusySourceIsAskedAgain) {
  const std::string address = Serve({.chunk_bytes = 64 << 10, .max_streams = 1});
  auto fetcher = Open(address);
  ASSERT_NE(fetcher, nullptr);
  FetchStats stats;
  auto view = fetcher->PrepareStage(0, Layers(), {}, nullptr, &stats);
  ASSERT_TRUE(view.ok()) << view.status();
  ExpectSameTensors(**view, StageTensors(**view, Layers(), 0, Layers()).size());
}

TEST_F(FetchTest, FetchesOnlyTheStagesTensorsAndReusesTheCache) {
  const std::string address = Serve({.chunk_bytes = 64 << 10});
  auto fetcher = Open(address);
  ASSERT_NE(fetcher, nullptr);
  EXPECT_EQ(fetcher->fingerprint(), Sha256Hex(digests_.fingerprint));

  FetchStats stats;
  uint64_t last_done = 0, last_total = 0;
  auto view = fetcher->PrepareStage(
      0, 2, {}, [&](uint64_t done, uint64_t total) { last_done = done, last_total = total; },
      &stats);
  ASSERT_TRUE(view.ok()) << view.status();
  const std::vector<size_t> wanted = StageTensors(**view, Layers(), 0, 2);
  ExpectSameTensors(**view, wanted.size());
  EXPECT_EQ(stats.tensors, wanted.size());
  EXPECT_EQ(stats.tensors_cached, 0u);
  EXPECT_EQ(stats.bytes_received, stats.bytes_needed);
  EXPECT_EQ(last_done, last_total);
  EXPECT_LT(stats.bytes_needed, model_->mapping().size() / 2);
  // A tensor of a layer the stage does not run is not there.
  EXPECT_FALSE((*view)->GetTensor("blk.3.attn_norm.weight", {64}).ok());

  // The same stage again: everything from the cache.
  auto again = fetcher->PrepareStage(0, 2, {}, nullptr, &stats);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(stats.bytes_received, 0u);
  EXPECT_EQ(stats.tensors_cached, wanted.size());

  // The next stage: only its own layers move (a restart with a new fetcher too).
  auto restarted = Open(address);
  v1::RegisterRequest request;
  restarted->DescribeCache(&request);
  EXPECT_EQ(std::vector<int>(request.cached_layers().begin(), request.cached_layers().end()),
            (std::vector<int>{0, 1}));
  EXPECT_TRUE(request.cached_embedding());
  auto last = restarted->PrepareStage(2, Layers(), {}, nullptr, &stats);
  ASSERT_TRUE(last.ok()) << last.status();
  EXPECT_LT(stats.bytes_received, stats.bytes_needed + 1);
  EXPECT_GT(stats.tensors_fetched, 0u);
}

TEST_F(FetchTest, CorruptedChunkIsDetectedAndFetchedAgain) {
  const std::string address = Serve({.chunk_bytes = 16 << 10, .corrupt_chunk = 3});
  auto fetcher = Open(address);  // the header: chunks 1 and 2 at most
  ASSERT_NE(fetcher, nullptr);
  FetchStats stats;
  auto view = fetcher->PrepareStage(0, Layers(), {}, nullptr, &stats);
  ASSERT_TRUE(view.ok()) << view.status();
  EXPECT_EQ(stats.refetched, 1);
  ExpectSameTensors(**view, model_->tensors().size());
}

TEST_F(FetchTest, InterruptedTransferResumesFromThePartialFile) {
  const std::string address = Serve({});
  auto fetcher = Open(address);
  ASSERT_NE(fetcher, nullptr);
  // Half of the embedding, as a killed transfer would have left it.
  const GgufTensor* embd = model_->FindTensor("token_embd.weight");
  ASSERT_NE(embd, nullptr);
  const size_t index = static_cast<size_t>(embd - model_->tensors().data());
  const Sha256Digest digest = digests_.tensor_digests[index];
  const uint64_t half = embd->size_bytes / 2;
  {
    std::ofstream out(fetcher->cache()->PartialPath(digest), std::ios::binary);
    out.write(reinterpret_cast<const char*>(embd->data), static_cast<std::streamsize>(half));
  }
  FetchStats stats;
  auto view = fetcher->PrepareStage(0, 1, {}, nullptr, &stats);
  ASSERT_TRUE(view.ok()) << view.status();
  EXPECT_EQ(stats.bytes_resumed, half);
  EXPECT_EQ(stats.bytes_received + half, stats.bytes_needed);
  ExpectSameTensors(**view, StageTensors(**view, Layers(), 0, 1).size());

  // A partial file with wrong bytes is caught by the digest and fetched whole.
  const GgufTensor* norm = model_->FindTensor("blk.1.attn_norm.weight");
  ASSERT_NE(norm, nullptr);
  const Sha256Digest norm_digest =
      digests_.tensor_digests[static_cast<size_t>(norm - model_->tensors().data())];
  {
    std::ofstream out(fetcher->cache()->PartialPath(norm_digest), std::ios::binary);
    out << "garbage";
  }
  auto next = fetcher->PrepareStage(1, 2, {}, nullptr, &stats);
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_GE(stats.refetched, 1);
}

TEST_F(FetchTest, DamagedCacheFileIsFetchedAgain) {
  const std::string address = Serve({});
  auto fetcher = Open(address);
  ASSERT_NE(fetcher, nullptr);
  FetchStats stats;
  ASSERT_TRUE(fetcher->PrepareStage(0, 1, {}, nullptr, &stats).ok());
  const GgufTensor* t = model_->FindTensor("blk.0.ffn_up.weight");
  ASSERT_NE(t, nullptr);
  const Sha256Digest digest =
      digests_.tensor_digests[static_cast<size_t>(t - model_->tensors().data())];
  {
    std::fstream f(fetcher->cache()->BlobPath(digest),
                   std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(10);
    f.put('\x7f');
  }
  auto view = fetcher->PrepareStage(0, 1, {}, nullptr, &stats);
  ASSERT_TRUE(view.ok()) << view.status();
  EXPECT_EQ(stats.tensors_fetched, 1u);
  EXPECT_EQ(stats.bytes_received, t->size_bytes);
  ExpectSameTensors(**view, stats.tensors);
}

// Pruning removes what no plan needs, least recently used first: a blob used again (a
// stage prepared again) outlives one used once, earlier; what `keep` names stays.
TEST_F(FetchTest, PruneRemovesTheLeastRecentlyUsedBlobsNotKept) {
  const std::string address = Serve({});
  auto fetcher = Open(address);
  ASSERT_NE(fetcher, nullptr);
  FetchStats stats;
  auto blobs_of = [&](int first, int last) {
    std::vector<BlobRef> out;
    for (size_t i : StageTensors(*fetcher->header(), Layers(), first, last)) {
      const GgufTensor& t = fetcher->header()->tensors()[i];
      out.push_back({digests_.tensor_digests[i], t.size_bytes});
    }
    return out;
  };
  auto held = [&](const std::vector<BlobRef>& blobs) {
    size_t n = 0;
    for (const BlobRef& b : blobs) n += fetcher->cache()->Has(b.digest, b.size);
    return n;
  };
  ASSERT_TRUE(fetcher->PrepareStage(1, 2, {}, nullptr, &stats).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_TRUE(fetcher->PrepareStage(2, 3, {}, nullptr, &stats).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_TRUE(fetcher->PrepareStage(1, 2, {}, nullptr, &stats).ok());  // used again
  const std::vector<BlobRef> layer1 = blobs_of(1, 2), layer2 = blobs_of(2, 3);
  ASSERT_EQ(held(layer1), layer1.size());
  ASSERT_EQ(held(layer2), layer2.size());

  // Just over the limit: one file goes, and it is one of layer 2's (used longer ago). The
  // header, older still, is kept.
  const std::string header = fetcher->manifest_response().header_sha256();
  const uint64_t disk = fetcher->cache()->DiskBytes();
  BlobCache::PruneResult pruned = fetcher->cache()->Prune(disk - 1, {header});
  EXPECT_EQ(pruned.files_removed, 1u);
  EXPECT_EQ(pruned.bytes_left, disk - pruned.bytes_removed);
  EXPECT_EQ(held(layer1), layer1.size());
  EXPECT_EQ(held(layer2), layer2.size() - 1);

  // No room at all: everything not kept goes.
  absl::flat_hash_set<std::string> keep = {header};
  for (const BlobRef& b : layer1) keep.insert(std::string(b.digest.begin(), b.digest.end()));
  pruned = fetcher->cache()->Prune(0, keep);
  EXPECT_EQ(held(layer1), layer1.size());
  size_t layer2_only = 0;
  for (const BlobRef& b : layer2) {
    layer2_only += !keep.contains(std::string(b.digest.begin(), b.digest.end()));
  }
  EXPECT_EQ(held(layer2), layer2.size() - layer2_only);
  EXPECT_GT(pruned.files_removed, 0u);
}

// With --cache-max-bytes, preparing a stage prunes what its plan does not need: the new
// stage's tensors and the header stay, and the stage still reads right.
TEST_F(FetchTest, CacheMaxBytesKeepsOnlyWhatThePlanNeeds) {
  const std::string address = Serve({});
  {
    auto unlimited = Open(address);
    ASSERT_NE(unlimited, nullptr);
    FetchStats stats;
    ASSERT_TRUE(unlimited->PrepareStage(0, 2, {}, nullptr, &stats).ok());
  }
  auto f = ModelFetcher::Open(
      {.coordinator = address, .cache_dir = (dir_ / "cache").string(), .cache_max_bytes = 1});
  ASSERT_TRUE(f.ok()) << f.status();
  FetchStats stats;
  auto view = (*f)->PrepareStage(3, 4, {}, nullptr, &stats);
  ASSERT_TRUE(view.ok()) << view.status();
  const std::vector<size_t> wanted = StageTensors(**view, Layers(), 3, 4);
  ExpectSameTensors(**view, wanted.size());
  EXPECT_GT(stats.files_pruned, 0u);
  uint64_t kept = 0;
  absl::flat_hash_set<std::string> seen;
  for (size_t i : wanted) {
    const Sha256Digest& d = digests_.tensor_digests[i];
    if (!seen.insert(std::string(d.begin(), d.end())).second) continue;
    EXPECT_TRUE((*f)->cache()->Has(d, (*view)->tensors()[i].size_bytes)) << i;
    kept += (*view)->tensors()[i].size_bytes;
  }
  // Only the stage's blobs and the header are left (within a block per file).
  const uint64_t header = (*f)->header()->data_offset();
  EXPECT_LE((*f)->cache()->DiskBytes(), kept + header + (seen.size() + 1) * 4096);
  v1::RegisterRequest request;
  (*f)->DescribeCache(&request);
  EXPECT_EQ(std::vector<int>(request.cached_layers().begin(), request.cached_layers().end()),
            (std::vector<int>{3}));
  // A Configure's answer says the same (the coordinator then stops naming this node as a
  // source of the layers it dropped).
  v1::ConfigureResponse answer;
  answer.add_cached_layers(0);  // stale: replaced
  (*f)->DescribeCache(&answer);
  EXPECT_TRUE(answer.reports_cache());
  EXPECT_EQ(std::vector<int>(answer.cached_layers().begin(), answer.cached_layers().end()),
            (std::vector<int>{3}));
}

TEST_F(FetchTest, PeersAreTriedFirstAndThoseWithoutTheBlobSkipped) {
  const std::string coordinator = Serve({});
  auto seed = Open(coordinator);
  ASSERT_NE(seed, nullptr);
  FetchStats stats;
  ASSERT_TRUE(seed->PrepareStage(0, 1, {}, nullptr, &stats).ok());
  // A peer serving the first fetcher's cache.
  TensorService peer_service(
      std::make_shared<CacheSource>(seed->cache(), seed->manifest_response()));
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&peer_service);
  auto peer = builder.BuildAndStart();
  const std::string peer_address = absl::StrCat("127.0.0.1:", port);

  auto fetcher =
      ModelFetcher::Open({.coordinator = coordinator, .cache_dir = (dir_ / "cache2").string()});
  ASSERT_TRUE(fetcher.ok()) << fetcher.status();
  const uint64_t from_coordinator_before = service_->bytes_sent();
  // Layers 0 and 1: the peer holds layer 0 and the embedding, not layer 1.
  auto view =
      (*fetcher)->PrepareStage(0, 2, {{peer_address, ""}, {"127.0.0.1:1", ""}}, nullptr, &stats);
  ASSERT_TRUE(view.ok()) << view.status();
  EXPECT_GT(peer_service.bytes_sent(), 0u);
  EXPECT_EQ(peer_service.bytes_sent() + (service_->bytes_sent() - from_coordinator_before),
            stats.bytes_received);
  ExpectSameTensors(**view, stats.tensors);
  peer->Shutdown();
}

TEST_F(FetchTest, PeerSendingWrongBytesIsLeftForTheCoordinator) {
  const std::string coordinator = Serve({});
  // A peer serving the same model that damages its first chunk.
  TensorService bad_peer(std::make_shared<ModelFileSource>(model_, digests_), {.corrupt_chunk = 1});
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&bad_peer);
  auto peer = builder.BuildAndStart();
  const std::string peer_address = absl::StrCat("127.0.0.1:", port);

  auto fetcher = Open(coordinator);
  ASSERT_NE(fetcher, nullptr);
  FetchStats stats;
  auto view = fetcher->PrepareStage(0, 1, {{peer_address, ""}}, nullptr, &stats);
  ASSERT_TRUE(view.ok()) << view.status();
  EXPECT_EQ(stats.refetched, 1);
  EXPECT_GT(stats.bytes_from[coordinator], 0u);
  ExpectSameTensors(**view, stats.tensors);
  peer->Shutdown();
}

TEST(ManifestTest, BoundsAreChecked) {
  v1::ManifestResponse m;
  m.set_fingerprint(std::string(64, 'a'));
  m.set_file_size(1000);
  m.set_header_size(100);
  m.set_header_sha256(std::string(32, '\1'));
  m.add_tensor_sha256(std::string(32, '\2'));
  EXPECT_TRUE(ParseManifest(m).ok());
  v1::ManifestResponse bad = m;
  bad.set_header_size(1001);
  EXPECT_FALSE(ParseManifest(bad).ok());
  bad = m;
  bad.set_fingerprint("../../etc/passwd");
  EXPECT_FALSE(ParseManifest(bad).ok());
  bad = m;
  bad.add_tensor_sha256("short");
  EXPECT_FALSE(ParseManifest(bad).ok());
  bad = m;
  bad.set_file_size(kMaxModelBytes + 1);
  EXPECT_FALSE(ParseManifest(bad).ok());
  bad = m;
  for (uint64_t i = 0; i < kMaxManifestTensors; ++i) bad.add_tensor_sha256(std::string(32, 'x'));
  EXPECT_FALSE(ParseManifest(bad).ok());
}

TEST(ManifestTest, TensorLayerReadsOnlyBlockNames) {
  EXPECT_EQ(TensorLayer("blk.12.attn_q.weight"), 12);
  EXPECT_EQ(TensorLayer("blk.x.attn_q.weight"), -1);
  EXPECT_EQ(TensorLayer("token_embd.weight"), -1);
  EXPECT_EQ(TensorLayer("blk.-1.a"), -1);
}

}  // namespace
}  // namespace tandem::fetch
