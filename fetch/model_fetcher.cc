#include "fetch/model_fetcher.h"

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

double SecondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

}  // namespace

absl::StatusOr<std::unique_ptr<ModelFetcher>> ModelFetcher::Open(ModelFetcherOptions options) {
  if (options.coordinator.empty())
    return absl::InvalidArgumentError("no coordinator to fetch from");
  if (!(options.max_bytes_per_s >= 0)) {
    return absl::InvalidArgumentError("the fetch rate limit must be >= 0");
  }
  std::unique_ptr<ModelFetcher> f(new ModelFetcher(std::move(options)));
  TANDEM_ASSIGN_OR_RETURN(f->cache_, BlobCache::Open(f->options_.cache_dir));
  BlobClient coordinator(f->options_.coordinator);
  TANDEM_ASSIGN_OR_RETURN(f->manifest_response_, coordinator.GetManifest());
  TANDEM_ASSIGN_OR_RETURN(f->manifest_, ParseManifest(f->manifest_response_));
  FetchStats ignored;
  if (!f->cache_->Has(f->manifest_.header.digest, f->manifest_.header.size)) {
    TANDEM_RETURN_IF_ERROR(
        f->FetchBlob(f->manifest_.header, {f->options_.coordinator}, nullptr, &ignored));
  }
  auto header = f->cache_->Map(f->manifest_.header.digest, f->manifest_.header.size, true);
  if (!header.ok()) {
    // Damaged in the cache: removed by Map, so fetched once more.
    TANDEM_RETURN_IF_ERROR(
        f->FetchBlob(f->manifest_.header, {f->options_.coordinator}, nullptr, &ignored));
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

BlobRef ModelFetcher::TensorBlob(size_t index) const {
  return BlobRef{manifest_.tensor_digests[index], header_->tensors()[index].size_bytes};
}

void ModelFetcher::DescribeCache(v1::RegisterRequest* request) const {
  request->set_fetches_weights(true);
  std::vector<bool> complete(n_layer_, true);
  bool embedding = false, output = false, output_norm = false;
  const bool tied = header_->FindTensor("output.weight") == nullptr;
  for (size_t i = 0; i < header_->tensors().size(); ++i) {
    const BlobRef blob = TensorBlob(i);
    const bool held = cache_->Has(blob.digest, blob.size);
    const std::string& name = header_->tensors()[i].name;
    const int layer = TensorLayer(name);
    if (layer >= 0 && layer < n_layer_) {
      if (!held) complete[layer] = false;
    } else if (name == "token_embd.weight") {
      embedding = held;
    } else if (name == "output.weight") {
      output = held;
    } else if (name == "output_norm.weight") {
      output_norm = held;
    }
  }
  for (int l = 0; l < n_layer_; ++l) {
    if (complete[l]) request->add_cached_layers(l);
  }
  request->set_cached_embedding(embedding);
  request->set_cached_head(output_norm && (tied ? embedding : output));
}

absl::Status ModelFetcher::FetchBlob(const BlobRef& blob, const std::vector<std::string>& sources,
                                     const std::function<void(uint64_t)>& on_bytes,
                                     FetchStats* stats) {
  absl::Status last = absl::NotFoundError("no source to fetch from");
  int wrong = 0;
  bool first_try = true;
  for (size_t s = 0; s < sources.size();) {
    TANDEM_ASSIGN_OR_RETURN(std::unique_ptr<BlobWriter> writer,
                            BlobWriter::Begin(*cache_, blob.digest, blob.size));
    if (first_try) {
      stats->bytes_resumed += writer->resumed_bytes();
      if (on_bytes && writer->resumed_bytes() > 0) on_bytes(writer->resumed_bytes());
      first_try = false;
    }
    BlobClient client(sources[s]);
    absl::Status status = client.Fetch(blob, *writer, [&](uint64_t n) {
      stats->bytes_received += n;
      if (on_bytes) on_bytes(n);
    });
    if (status.ok()) status = writer->Commit();
    if (status.ok()) return status;
    last = status;
    if (status.code() == absl::StatusCode::kDataLoss) {
      // Wrong bytes: Commit removed them (or the stream was cut); fetch again.
      ++stats->refetched;
      std::fprintf(stderr, "tandem node: %s; fetching it again\n",
                   std::string(status.message()).c_str());
      if (++wrong >= options_.attempts) break;
      continue;
    }
    if (status.code() == absl::StatusCode::kResourceExhausted ||
        status.code() == absl::StatusCode::kPermissionDenied) {
      return status;  // our disk: no other source helps
    }
    ++s;  // this source does not have it or cannot be reached: the next one
  }
  return absl::Status(last.code(), absl::StrCat("cannot fetch blob ", Sha256Hex(blob.digest), " (",
                                                blob.size, " bytes): ", last.message()));
}

absl::StatusOr<std::shared_ptr<const GgufFile>> ModelFetcher::PrepareStage(
    int layer_first, int layer_last, const std::vector<std::string>& peers,
    const std::function<void(uint64_t, uint64_t)>& on_bytes, FetchStats* stats) {
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
  uint64_t missing_bytes = 0;
  for (size_t i : wanted) {
    const BlobRef blob = TensorBlob(i);
    stats->bytes_needed += blob.size;
    if (cache_->Has(blob.digest, blob.size)) {
      auto mapped = cache_->Map(blob.digest, blob.size, /*verify=*/true);
      if (mapped.ok()) {
        TANDEM_RETURN_IF_ERROR(view->AttachTensor(i, *std::move(mapped)));
        ++stats->tensors_cached;
        continue;
      }
      std::fprintf(stderr, "tandem node: %s\n", std::string(mapped.status().message()).c_str());
    }
    missing.push_back(i);
    missing_bytes += blob.size;
  }

  std::vector<std::string> sources;
  absl::flat_hash_set<std::string> seen;
  for (const std::string& p : peers) {
    if (!p.empty() && p != options_.coordinator && seen.insert(p).second) sources.push_back(p);
  }
  sources.push_back(options_.coordinator);

  uint64_t done = 0;
  if (on_bytes) on_bytes(0, missing_bytes);
  const auto transfer_start = Clock::now();
  auto count = [&](uint64_t n) {
    done += n;
    if (on_bytes) on_bytes(std::min(done, missing_bytes), missing_bytes);
    if (options_.max_bytes_per_s > 0) {
      // Paced: never ahead of the allowed rate since the transfer began.
      const double ahead =
          static_cast<double>(done - stats->bytes_resumed) / options_.max_bytes_per_s -
          SecondsSince(transfer_start);
      if (ahead > 0) std::this_thread::sleep_for(std::chrono::duration<double>(ahead));
    }
  };
  for (size_t i : missing) {
    const BlobRef blob = TensorBlob(i);
    // Tensors with equal bytes share one blob: fetched once.
    if (!cache_->Has(blob.digest, blob.size)) {
      TANDEM_RETURN_IF_ERROR(FetchBlob(blob, sources, count, stats));
      ++stats->tensors_fetched;
    } else {
      count(blob.size);
    }
    TANDEM_ASSIGN_OR_RETURN(std::shared_ptr<const MappedFile> mapped,
                            cache_->Map(blob.digest, blob.size, /*verify=*/false));
    TANDEM_RETURN_IF_ERROR(view->AttachTensor(i, std::move(mapped)));
  }
  stats->transfer_seconds = SecondsSince(transfer_start);
  stats->seconds = SecondsSince(start);
  return std::shared_ptr<const GgufFile>(std::move(view));
}

}  // namespace tandem::fetch
