#include "fetch/model_fetcher.h"

#include <time.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <thread>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "fetch/blob_client.h"
#include "model/hparams.h"

namespace tandem::fetch {
namespace {

using Clock = std::chrono::steady_clock;

// Transfers smaller than this do not update the measured rate.
constexpr uint64_t kMinRateBytes = uint64_t{4} << 20;

std::string DigestKey(const Sha256Digest& d) { return std::string(d.begin(), d.end()); }

double SecondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// CPU seconds this process has used (every thread).
double ProcessCpuSeconds() {
  struct timespec ts;
  if (::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0) return 0;
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// Runs fn(k) for every k in [0, n) on up to `threads` threads (this one included).
void ParallelFor(size_t n, int threads, const std::function<void(size_t)>& fn) {
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t k; (k = next++) < n;) fn(k);
  };
  std::vector<std::thread> pool;
  for (size_t t = 1; t < std::min<size_t>(static_cast<size_t>(threads), n); ++t) {
    pool.emplace_back(work);
  }
  work();
  for (std::thread& t : pool) t.join();
}

}  // namespace

// Keeps a transfer under ModelFetcherOptions::max_bytes_per_s: a stream that got ahead of
// the allowed rate since the transfer began sleeps.
class ModelFetcher::Pacer {
 public:
  explicit Pacer(double bytes_per_s) : rate_(bytes_per_s), start_(Clock::now()) {}
  void Received(uint64_t n) {
    if (rate_ <= 0) return;
    double ahead;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      bytes_ += n;
      ahead = static_cast<double>(bytes_) / rate_ - SecondsSince(start_);
    }
    if (ahead > 0) std::this_thread::sleep_for(std::chrono::duration<double>(ahead));
  }

 private:
  const double rate_;
  const Clock::time_point start_;
  std::mutex mutex_;
  uint64_t bytes_ = 0;
};

absl::StatusOr<std::unique_ptr<ModelFetcher>> ModelFetcher::Open(ModelFetcherOptions options) {
  if (options.coordinator.empty())
    return absl::InvalidArgumentError("no coordinator to fetch from");
  if (!(options.max_bytes_per_s >= 0)) {
    return absl::InvalidArgumentError("the fetch rate limit must be >= 0");
  }
  if (options.streams < 1 || options.streams > 64) {
    return absl::InvalidArgumentError("fetch streams must be 1 to 64");
  }
  std::unique_ptr<ModelFetcher> f(new ModelFetcher(std::move(options)));
  TANDEM_ASSIGN_OR_RETURN(f->cache_, BlobCache::Open(f->options_.cache_dir));
  TANDEM_ASSIGN_OR_RETURN(f->manifest_response_,
                          f->Client({f->options_.coordinator, ""}).GetManifest());
  TANDEM_ASSIGN_OR_RETURN(f->manifest_, ParseManifest(f->manifest_response_));
  FetchStats ignored;
  if (!f->cache_->Has(f->manifest_.header.digest, f->manifest_.header.size)) {
    TANDEM_RETURN_IF_ERROR(f->FetchBlob(f->manifest_.header, {{f->options_.coordinator, ""}},
                                        nullptr, nullptr, &ignored));
  }
  auto header = f->cache_->Map(f->manifest_.header.digest, f->manifest_.header.size, true);
  if (!header.ok()) {
    // Damaged in the cache: removed by Map, so fetched once more.
    TANDEM_RETURN_IF_ERROR(f->FetchBlob(f->manifest_.header, {{f->options_.coordinator, ""}},
                                        nullptr, nullptr, &ignored));
    header = f->cache_->Map(f->manifest_.header.digest, f->manifest_.header.size, true);
    if (!header.ok()) return header.status();
  }
  f->header_bytes_.assign((*header)->data(), (*header)->data() + (*header)->size());
  const std::string name = absl::StrCat("model ", f->manifest_.fingerprint.substr(0, 12), " (from ",
                                        f->options_.coordinator, ")");
  TANDEM_ASSIGN_OR_RETURN(f->header_,
                          GgufFile::FromHeader(name, f->header_bytes_, f->manifest_.file_size));
  TANDEM_RETURN_IF_ERROR(CheckHeaderAgainstManifest(*f->header_, f->manifest_));
  TANDEM_ASSIGN_OR_RETURN(Hparams h, ReadHparams(*f->header_));
  f->n_layer_ = h.n_layer;
  return f;
}

BlobClient& ModelFetcher::Client(const FetchSource& source) {
  std::lock_guard<std::mutex> lock(clients_mutex_);
  std::unique_ptr<BlobClient>& client =
      clients_[absl::StrCat(source.address, " ", source.identity)];
  if (!client) client = std::make_unique<BlobClient>(source);
  return *client;
}

v1::FetchProgress ModelFetcher::Progress() const {
  v1::FetchProgress p;
  p.set_active(active_);
  const uint64_t total = progress_total_;
  p.set_bytes_done(std::min<uint64_t>(progress_done_, total));  // a new transfer may be starting
  p.set_bytes_total(total);
  p.set_bytes_per_s(bytes_per_s_);
  return p;
}

BlobRef ModelFetcher::TensorBlob(size_t index) const {
  return BlobRef{manifest_.tensor_digests[index], header_->tensors()[index].size_bytes};
}

ModelFetcher::CacheContents ModelFetcher::Contents() const {
  CacheContents out;
  std::vector<bool> complete(n_layer_, true);
  bool output = false, output_norm = false;
  const bool tied = header_->FindTensor("output.weight") == nullptr;
  for (size_t i = 0; i < header_->tensors().size(); ++i) {
    const BlobRef blob = TensorBlob(i);
    const bool held = cache_->Has(blob.digest, blob.size);
    const std::string& name = header_->tensors()[i].name;
    const int layer = TensorLayer(name);
    if (layer >= 0 && layer < n_layer_) {
      if (!held) complete[layer] = false;
    } else if (name == "token_embd.weight") {
      out.embedding = held;
    } else if (name == "output.weight") {
      output = held;
    } else if (name == "output_norm.weight") {
      output_norm = held;
    }
  }
  for (int l = 0; l < n_layer_; ++l) {
    if (complete[l]) out.layers.push_back(l);
  }
  out.head = output_norm && (tied ? out.embedding : output);
  return out;
}

void ModelFetcher::DescribeCache(v1::RegisterRequest* request) const {
  const CacheContents c = Contents();
  request->set_fetches_weights(true);
  for (int l : c.layers) request->add_cached_layers(l);
  request->set_cached_embedding(c.embedding);
  request->set_cached_head(c.head);
}

void ModelFetcher::DescribeCache(v1::ConfigureResponse* response) const {
  const CacheContents c = Contents();
  response->set_reports_cache(true);
  response->clear_cached_layers();
  for (int l : c.layers) response->add_cached_layers(l);
  response->set_cached_embedding(c.embedding);
  response->set_cached_head(c.head);
}

absl::Status ModelFetcher::FetchBlob(const BlobRef& blob, const std::vector<FetchSource>& sources,
                                     const std::function<void(uint64_t)>& on_bytes, Pacer* pacer,
                                     FetchStats* stats) {
  absl::Status last = absl::NotFoundError("no source to fetch from");
  int wrong = 0, busy = 0;
  constexpr int kBusyRetries = 20;  // about 4.5 s of waiting for a busy source
  bool first_try = true;
  for (size_t s = 0; s < sources.size();) {
    TANDEM_ASSIGN_OR_RETURN(std::unique_ptr<BlobWriter> writer,
                            BlobWriter::Begin(*cache_, blob.digest, blob.size));
    if (first_try) {
      stats->bytes_resumed += writer->resumed_bytes();
      if (on_bytes && writer->resumed_bytes() > 0) on_bytes(writer->resumed_bytes());
      first_try = false;
    }
    uint64_t& from_source = stats->bytes_from[sources[s].address];
    absl::Status status = Client(sources[s]).Fetch(blob, *writer, [&](uint64_t n) {
      stats->bytes_received += n;
      from_source += n;
      if (on_bytes) on_bytes(n);
      if (pacer != nullptr) pacer->Received(n);
    });
    if (status.ok()) status = writer->Commit();
    if (status.ok()) return status;
    if (writer->failed()) return status;  // our disk: no other source helps
    last = status;
    if (status.code() == absl::StatusCode::kDataLoss) {
      // Wrong bytes: Commit removed them (or the stream was cut). Fetched again, from the
      // next source when there is one (a peer may be the one sending them wrong).
      ++stats->refetched;
      std::fprintf(stderr, "tandem node: %s; fetching it again\n",
                   std::string(status.message()).c_str());
      if (++wrong >= options_.attempts + static_cast<int>(sources.size()) - 1) break;
      if (s + 1 < sources.size()) ++s;
      continue;
    }
    if (status.code() == absl::StatusCode::kResourceExhausted && busy < kBusyRetries) {
      // The source serves its most streams at once (a stream of ours that just ended may
      // not have left its count yet): asked again shortly, then the next source.
      std::this_thread::sleep_for(std::chrono::milliseconds(10 << std::min(busy, 5)));
      ++busy;
      continue;
    }
    busy = 0;
    ++s;  // this source does not have it or cannot be reached: the next one
  }
  return absl::Status(last.code(), absl::StrCat("cannot fetch blob ", Sha256Hex(blob.digest), " (",
                                                blob.size, " bytes): ", last.message()));
}

absl::StatusOr<std::shared_ptr<const GgufFile>> ModelFetcher::PrepareStage(
    int layer_first, int layer_last, const std::vector<FetchSource>& peers,
    const std::function<void(uint64_t, uint64_t)>& on_bytes, FetchStats* stats, bool prefetch) {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto start = Clock::now();
  *stats = FetchStats{};
  if (layer_first < 0 || layer_last > n_layer_ || layer_first >= layer_last) {
    return absl::InvalidArgumentError(absl::StrCat("layer range [", layer_first, ", ", layer_last,
                                                   ") is not within the model's ", n_layer_,
                                                   " layers"));
  }
  TANDEM_ASSIGN_OR_RETURN(
      std::unique_ptr<GgufFile> view,
      GgufFile::FromHeader(header_->path(), header_bytes_, manifest_.file_size));
  const std::vector<size_t> wanted = StageTensors(*view, n_layer_, layer_first, layer_last);
  stats->tensors = wanted.size();
  std::vector<size_t> missing;
  // What the cache holds is checked again (a disk can rot), on several cores.
  std::vector<absl::StatusOr<std::shared_ptr<const MappedFile>>> cached(
      wanted.size(), absl::NotFoundError("not cached"));
  // What the prefetch just before this call checked or committed is not hashed again; the
  // trust lasts one call.
  absl::flat_hash_set<std::string> trusted = std::move(prefetched_);
  prefetched_.clear();
  ParallelFor(wanted.size(), options_.streams, [&](size_t k) {
    const BlobRef blob = TensorBlob(wanted[k]);
    if (cache_->Has(blob.digest, blob.size)) {
      const bool checked = trusted.contains(DigestKey(blob.digest));
      cached[k] = cache_->Map(blob.digest, blob.size, /*verify=*/!checked);
    }
  });
  for (size_t k = 0; k < wanted.size(); ++k) {
    if (prefetch && cached[k].ok()) prefetched_.insert(DigestKey(TensorBlob(wanted[k]).digest));
  }
  for (size_t k = 0; k < wanted.size(); ++k) {
    const size_t i = wanted[k];
    const BlobRef blob = TensorBlob(i);
    stats->bytes_needed += blob.size;
    if (absl::StatusOr<std::shared_ptr<const MappedFile>>& mapped = cached[k];
        mapped.status().code() != absl::StatusCode::kNotFound) {
      if (mapped.ok()) {
        TANDEM_RETURN_IF_ERROR(view->AttachTensor(i, *std::move(mapped)));
        ++stats->tensors_cached;
        continue;
      }
      std::fprintf(stderr, "tandem node: %s\n", std::string(mapped.status().message()).c_str());
    }
    missing.push_back(i);
  }

  std::vector<FetchSource> sources;
  absl::flat_hash_set<std::string> seen;
  // Addresses and identities from the wire: a few, of sane length, are tried; the rest
  // are ignored.
  constexpr size_t kMaxPeers = 8;
  constexpr size_t kMaxAddressLength = 255;
  for (const FetchSource& p : peers) {
    if (sources.size() >= kMaxPeers) break;
    if (!p.address.empty() && p.address.size() <= kMaxAddressLength &&
        p.identity.size() <= kMaxAddressLength && p.address != options_.coordinator &&
        seen.insert(p.address).second) {
      sources.push_back(p);
    }
  }
  sources.push_back({options_.coordinator, ""});

  // Tensors with equal bytes share one blob: fetched once.
  std::vector<BlobRef> blobs;
  absl::flat_hash_set<std::string> keys;
  for (size_t i : missing) {
    const BlobRef blob = TensorBlob(i);
    if (keys.insert(std::string(blob.digest.begin(), blob.digest.end())).second) {
      blobs.push_back(blob);
    }
  }
  uint64_t missing_bytes = 0;
  for (const BlobRef& blob : blobs) missing_bytes += blob.size;

  std::mutex progress_mutex;
  uint64_t done = 0;
  if (on_bytes) on_bytes(0, missing_bytes);
  if (missing_bytes > 0) {
    progress_done_ = 0;
    progress_total_ = missing_bytes;
    active_ = true;
  }
  // Not active once this returns, however it returns.
  std::unique_ptr<std::atomic<bool>, void (*)(std::atomic<bool>*)> inactive_on_return(
      &active_, [](std::atomic<bool>* a) { *a = false; });
  auto count = [&](uint64_t n) {
    std::lock_guard<std::mutex> lock(progress_mutex);
    done += n;
    progress_done_ = std::min(done, missing_bytes);
    if (on_bytes) on_bytes(std::min(done, missing_bytes), missing_bytes);
  };
  const auto transfer_start = Clock::now();
  const double transfer_cpu_start = ProcessCpuSeconds();
  Pacer pacer(options_.max_bytes_per_s);
  const int n_workers =
      static_cast<int>(std::min<size_t>(static_cast<size_t>(options_.streams), blobs.size()));
  std::vector<FetchStats> blob_stats(blobs.size());
  std::vector<absl::Status> blob_status(blobs.size());
  std::atomic<bool> failed{false};
  ParallelFor(blobs.size(), n_workers, [&](size_t k) {
    if (failed) return;
    blob_status[k] = FetchBlob(blobs[k], sources, count, &pacer, &blob_stats[k]);
    if (blob_status[k].ok()) {
      ++blob_stats[k].tensors_fetched;
    } else {
      failed = true;
    }
  });
  for (size_t k = 0; k < blobs.size(); ++k) {
    TANDEM_RETURN_IF_ERROR(blob_status[k]);
    if (prefetch) prefetched_.insert(DigestKey(blobs[k].digest));
    stats->tensors_fetched += blob_stats[k].tensors_fetched;
    stats->bytes_received += blob_stats[k].bytes_received;
    stats->bytes_resumed += blob_stats[k].bytes_resumed;
    stats->refetched += blob_stats[k].refetched;
    for (const auto& [source, bytes] : blob_stats[k].bytes_from) {
      if (bytes > 0) stats->bytes_from[source] += bytes;
    }
  }
  for (size_t i : missing) {
    const BlobRef blob = TensorBlob(i);
    TANDEM_ASSIGN_OR_RETURN(std::shared_ptr<const MappedFile> mapped,
                            cache_->Map(blob.digest, blob.size, /*verify=*/false));
    TANDEM_RETURN_IF_ERROR(view->AttachTensor(i, std::move(mapped)));
  }
  stats->transfer_seconds = SecondsSince(transfer_start);
  stats->transfer_cpu_seconds = ProcessCpuSeconds() - transfer_cpu_start;
  if (options_.cache_max_bytes > 0) {
    // What this stage reads stays (it is mapped); so does the header.
    absl::flat_hash_set<std::string> keep = {DigestKey(manifest_.header.digest)};
    for (size_t i : wanted) keep.insert(DigestKey(TensorBlob(i).digest));
    const BlobCache::PruneResult pruned = cache_->Prune(options_.cache_max_bytes, keep);
    stats->files_pruned = pruned.files_removed;
    stats->bytes_pruned = pruned.bytes_removed;
  }
  stats->seconds = SecondsSince(start);
  // The link's rate as this transfer saw it (with every stream and source at once, and any
  // --fetch-rate limit): what the planner's transfer term uses. Small transfers are all
  // round trips and say little about the rate.
  if (stats->bytes_received >= kMinRateBytes && stats->transfer_seconds > 0) {
    bytes_per_s_ = static_cast<double>(stats->bytes_received) / stats->transfer_seconds;
  }
  return std::shared_ptr<const GgufFile>(std::move(view));
}

}  // namespace tandem::fetch
