#include "cli/node_weights.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "model/fingerprint.h"

namespace tandem::cli {
namespace {

constexpr double kMiB = 1024.0 * 1024.0;

// Progress of a transfer: a bar redrawn in place on a terminal, else a line at each
// quarter.
std::function<void(uint64_t, uint64_t)> TransferProgress(int layer_first, int layer_last) {
  const bool terminal = ::isatty(STDERR_FILENO) == 1;
  const auto start = std::chrono::steady_clock::now();
  auto last_quarter = std::make_shared<int>(-1);
  return [=](uint64_t done, uint64_t total) {
    if (total == 0) return;
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double rate = seconds > 0 ? done / kMiB / seconds : 0;
    if (terminal) {
      constexpr int kWidth = 30;
      const int filled = static_cast<int>(done * kWidth / total);
      std::fprintf(stderr,
                   "\rtandem node: fetching layers [%d, %d) [%s%s] %.1f/%.1f MiB %.1f MiB/s%s",
                   layer_first, layer_last, std::string(filled, '#').c_str(),
                   std::string(kWidth - filled, '.').c_str(), done / kMiB, total / kMiB, rate,
                   done == total ? "\n" : "");
      return;
    }
    const int quarter = static_cast<int>(done * 4 / total);
    if (quarter != *last_quarter) {
      *last_quarter = quarter;
      std::fprintf(stderr, "tandem node: fetching layers [%d, %d): %.1f of %.1f MiB (%.1f s)\n",
                   layer_first, layer_last, done / kMiB, total / kMiB, seconds);
    }
  };
}

}  // namespace

absl::StatusOr<NodeWeights> OpenNodeWeights(const NodeWeightsOptions& o,
                                            v1::RegisterRequest* request) {
  NodeWeights w;
  if (!o.model.empty()) {
    auto file = GgufFile::Open(o.model);
    if (!file.ok()) return file.status();
    w.model = std::move(*file);
    FingerprintOptions fingerprint;
    if (!o.cache_dir.empty()) fingerprint.cache_dir = o.cache_dir;
    const ModelDigests digests = LoadOrComputeModelDigests(*w.model, fingerprint);
    request->set_model_fingerprint(Sha256Hex(digests.fingerprint));
    request->set_model_path(o.model);
    w.tensors = std::make_unique<fetch::TensorService>(
        std::make_shared<fetch::ModelFileSource>(w.model, digests));
    return w;
  }
  if (o.cache_dir.empty()) {
    return absl::InvalidArgumentError(
        "a node needs --model FILE, or --cache-dir DIR to fetch its layers from the cluster");
  }
  auto fetcher = fetch::ModelFetcher::Open({.coordinator = o.coordinator,
                                            .cache_dir = o.cache_dir,
                                            .max_bytes_per_s = o.fetch_rate,
                                            .cache_max_bytes = o.cache_max_bytes});
  if (!fetcher.ok()) {
    return absl::Status(fetcher.status().code(),
                        absl::StrCat("cannot fetch the model from the coordinator at ",
                                     o.coordinator, ": ", fetcher.status().message()));
  }
  w.fetcher = std::move(*fetcher);
  w.model = w.fetcher->header();
  request->set_model_fingerprint(w.fetcher->fingerprint());
  request->set_model_path(absl::StrCat("(fetched into ", o.cache_dir, ")"));
  w.fetcher->DescribeCache(request);
  w.tensors = std::make_unique<fetch::TensorService>(
      std::make_shared<fetch::CacheSource>(w.fetcher->cache(), w.fetcher->manifest_response()));
  std::fprintf(stderr, "tandem node: no model file; fetching layers into %s (%d layers cached)\n",
               o.cache_dir.c_str(), request->cached_layers_size());
  return w;
}

void UseFetchedStages(NodeWeights& weights, NodeOptions* options) {
  fetch::ModelFetcher* fetcher = weights.fetcher.get();
  if (fetcher == nullptr) return;
  options->describe_cache = [fetcher](v1::ConfigureResponse* r) { fetcher->DescribeCache(r); };
  options->stage_file =
      [fetcher](const v1::ConfigureRequest& r) -> absl::StatusOr<std::shared_ptr<const GgufFile>> {
    // Peers to fetch from before the coordinator, with the identities their certificates
    // must name (none on plaintext links; a list that does not pair up is not used).
    std::vector<fetch::FetchSource> peers;
    const bool paired = r.weight_source_identities_size() == 0 ||
                        r.weight_source_identities_size() == r.weight_sources_size();
    for (int i = 0; paired && i < r.weight_sources_size(); ++i) {
      peers.push_back({r.weight_sources(i), r.weight_source_identities_size() > 0
                                                ? r.weight_source_identities(i)
                                                : std::string()});
    }
    fetch::FetchStats stats;
    auto file = fetcher->PrepareStage(r.layer_first(), r.layer_last(), peers,
                                      TransferProgress(r.layer_first(), r.layer_last()), &stats,
                                      r.prefetch_only());
    if (!file.ok()) return file.status();
    const double moved = stats.bytes_received / kMiB;
    std::string from;
    for (const auto& [source, bytes] : stats.bytes_from) {
      absl::StrAppend(&from, from.empty() ? " from " : ", ", source,
                      source == fetcher->coordinator() ? " (coordinator)" : "", " ",
                      absl::StrFormat("%.1f MiB", bytes / kMiB));
    }
    std::fprintf(stderr,
                 "tandem node: layers [%d, %d): %zu tensors, %zu from the cache, %zu fetched "
                 "(%.1f MiB received, %.1f MiB resumed, %d fetched again) in %.2f s%s\n",
                 r.layer_first(), r.layer_last(), stats.tensors, stats.tensors_cached,
                 stats.tensors_fetched, moved, stats.bytes_resumed / kMiB, stats.refetched,
                 stats.seconds, from.c_str());
    if (stats.files_pruned > 0) {
      std::fprintf(stderr,
                   "tandem node: cache over %llu bytes: removed %zu files (%.1f MiB) the plan "
                   "does not need, least recently used first\n",
                   static_cast<unsigned long long>(fetcher->cache_max_bytes()), stats.files_pruned,
                   stats.bytes_pruned / kMiB);
    }
    // Machine-readable, for tests and benchmarks.
    std::fprintf(stderr,
                 "tandem node: fetch bytes_received=%llu bytes_resumed=%llu refetched=%d "
                 "transfer_s=%.3f prepare_s=%.3f transfer_cpu_s=%.3f\n",
                 static_cast<unsigned long long>(stats.bytes_received),
                 static_cast<unsigned long long>(stats.bytes_resumed), stats.refetched,
                 stats.transfer_seconds, stats.seconds, stats.transfer_cpu_seconds);
    return file;
  };
}

}  // namespace tandem::cli
