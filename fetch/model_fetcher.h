// A node without the model file: its model is the coordinator's manifest and header, and
// its tensors come into a content-addressed cache (fetch/blob_cache.h) when a plan gives
// it layers: only the tensors of those layers (and the embedding or head at the ends),
// each checked against its SHA-256, from peers that hold them or else the coordinator,
// resuming where an interrupted transfer stopped. What is in the cache is never fetched
// again, so a restart with the same plan moves nothing and a re-plan moves only what is
// missing.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "fetch/blob_cache.h"
#include "fetch/blob_client.h"
#include "fetch/manifest.h"
#include "model/gguf.h"
#include "tandem.pb.h"

namespace tandem::fetch {

struct ModelFetcherOptions {
  std::string coordinator;  // HOST:PORT of its Tensors service
  std::string cache_dir;
  double max_bytes_per_s = 0;  // 0: as fast as the link goes
  int attempts = 3;            // per blob, when the bytes received are wrong
  // Blobs fetched at once: several streams hide each one's flow-control round trips, and
  // their digests are checked on several cores.
  int streams = 4;
  // After each stage is prepared, blobs its plan does not need are removed, least
  // recently used first, while the cache takes more than this on disk. 0: no limit.
  uint64_t cache_max_bytes = 0;
};

// What one PrepareStage moved.
struct FetchStats {
  size_t tensors = 0;         // the stage reads
  size_t tensors_cached = 0;  // already in the cache (checked)
  size_t tensors_fetched = 0;
  uint64_t bytes_needed = 0;    // of the stage's tensors
  uint64_t bytes_received = 0;  // over the wire
  uint64_t bytes_resumed = 0;   // taken from partial files of earlier transfers
  size_t files_pruned = 0;      // removed from the cache (cache_max_bytes)
  uint64_t bytes_pruned = 0;
  int refetched = 0;                           // blobs fetched again after a wrong digest
  std::map<std::string, uint64_t> bytes_from;  // received, by source address
  double seconds = 0;               // the whole PrepareStage: checking the cache, fetching
  double transfer_seconds = 0;      // fetching alone
  double transfer_cpu_seconds = 0;  // CPU time of the whole process while fetching
};

class ModelFetcher {
 public:
  // Gets the manifest and the header (from the cache when it holds it) and checks that
  // they make the fingerprint the manifest names.
  static absl::StatusOr<std::unique_ptr<ModelFetcher>> Open(ModelFetcherOptions options);

  const std::string& fingerprint() const { return manifest_.fingerprint; }
  const std::string& coordinator() const { return options_.coordinator; }
  uint64_t cache_max_bytes() const { return options_.cache_max_bytes; }
  const v1::ManifestResponse& manifest_response() const { return manifest_response_; }
  std::shared_ptr<const BlobCache> cache() const { return cache_; }
  // The model's header: metadata and tensor table, no tensor data.
  std::shared_ptr<const GgufFile> header() const { return header_; }

  // The transfer in progress (or the last one) and the rate fetches measured, for
  // heartbeats. Safe to call from any thread.
  v1::FetchProgress Progress() const;

  // Says in `request` which layers (and ends) the cache holds, for the planner.
  void DescribeCache(v1::RegisterRequest* request) const;
  // The same, after a configuration (which fetched some tensors and may have pruned others).
  void DescribeCache(v1::ConfigureResponse* response) const;

  // Makes sure the cache holds every tensor a stage of [layer_first, layer_last) reads
  // (fetching from `peers` in order, then the coordinator) and returns the model with those
  // tensors mapped from the cache. `on_bytes(done, total)` follows the transfer. A
  // `prefetch` comes just before the stage's configuration: that next call trusts the
  // digests this one checked.
  absl::StatusOr<std::shared_ptr<const GgufFile>> PrepareStage(
      int layer_first, int layer_last, const std::vector<FetchSource>& peers,
      const std::function<void(uint64_t, uint64_t)>& on_bytes, FetchStats* stats,
      bool prefetch = false);

 private:
  struct CacheContents {
    std::vector<int> layers;  // every tensor of these layers is cached
    bool embedding = false;
    bool head = false;
  };
  CacheContents Contents() const;
  explicit ModelFetcher(ModelFetcherOptions options) : options_(std::move(options)) {}
  class Pacer;
  // Fetches one blob into the cache from the first source that has it. Safe to call from
  // several threads for different blobs.
  absl::Status FetchBlob(const BlobRef& blob, const std::vector<FetchSource>& sources,
                         const std::function<void(uint64_t)>& on_bytes, Pacer* pacer,
                         FetchStats* stats);
  BlobRef TensorBlob(size_t index) const;
  // One client (one connection) per source, kept: a new connection per tensor would start
  // each transfer with a small flow-control window.
  BlobClient& Client(const FetchSource& source);

  ModelFetcherOptions options_;
  std::shared_ptr<BlobCache> cache_;
  v1::ManifestResponse manifest_response_;
  Manifest manifest_;
  std::vector<uint8_t> header_bytes_;
  std::shared_ptr<const GgufFile> header_;
  int n_layer_ = 0;
  // Progress(): written by PrepareStage.
  std::atomic<bool> active_{false};
  std::atomic<uint64_t> progress_done_{0};
  std::atomic<uint64_t> progress_total_{0};
  std::atomic<double> bytes_per_s_{0};
  std::mutex mutex_;  // one PrepareStage at a time
  // Blobs (by digest bytes) a prefetch checked (on commit or in the cache): the next
  // PrepareStage, the stage's configuration, maps them without hashing them again.
  absl::flat_hash_set<std::string> prefetched_;
  std::mutex clients_mutex_;
  std::map<std::string, std::unique_ptr<BlobClient>> clients_;
};

}  // namespace tandem::fetch
