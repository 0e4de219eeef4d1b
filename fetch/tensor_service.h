// The Tensors gRPC service: a model's manifest, and any blob (header or tensor) by its
// SHA-256 as a stream of bounded chunks from a given offset. The coordinator serves its
// model file; nodes serve their model file or their cache, so a node can fetch from a
// peer. Callback API: one write in flight per stream, chunks read from a mapping.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstdint>
#include <memory>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "fetch/blob_cache.h"
#include "fetch/manifest.h"
#include "model/gguf.h"
#include "tandem.grpc.pb.h"

namespace tandem::fetch {

// A blob's bytes, kept alive by `owner`.
struct Blob {
  const uint8_t* data = nullptr;
  uint64_t size = 0;
  const MappedFile* mapping = nullptr;  // holds data (for read-ahead)
  std::shared_ptr<const void> owner;
};

// Where a Tensors server finds what it serves.
class BlobSource {
 public:
  virtual ~BlobSource() = default;
  // NotFound when this source does not hold the blob.
  virtual absl::StatusOr<Blob> Find(const Sha256Digest& digest, uint64_t size) const = 0;
  // NotFound when this source knows no manifest.
  virtual absl::StatusOr<v1::ManifestResponse> GetManifest() const = 0;
};

// A model file whose digests are known: its header and every tensor.
class ModelFileSource : public BlobSource {
 public:
  ModelFileSource(std::shared_ptr<const GgufFile> file, const ModelDigests& digests);
  absl::StatusOr<Blob> Find(const Sha256Digest& digest, uint64_t size) const override;
  absl::StatusOr<v1::ManifestResponse> GetManifest() const override { return manifest_; }

 private:
  std::shared_ptr<const GgufFile> file_;
  v1::ManifestResponse manifest_;
  // digest -> (offset in the file, size); tensors with equal bytes share one entry.
  absl::flat_hash_map<std::string, std::pair<uint64_t, uint64_t>> blobs_;
};

// A node's cache, with the manifest it fetched by.
class CacheSource : public BlobSource {
 public:
  CacheSource(std::shared_ptr<const BlobCache> cache, v1::ManifestResponse manifest)
      : cache_(std::move(cache)), manifest_(std::move(manifest)) {}
  absl::StatusOr<Blob> Find(const Sha256Digest& digest, uint64_t size) const override;
  absl::StatusOr<v1::ManifestResponse> GetManifest() const override { return manifest_; }

 private:
  std::shared_ptr<const BlobCache> cache_;
  v1::ManifestResponse manifest_;
};

struct TensorServiceOptions {
  uint64_t chunk_bytes = uint64_t{1} << 20;
  int max_streams = 16;  // Fetch streams served at once; more are refused
  // Tests only: flips one byte of the n-th chunk this server sends (1-based; 0: never),
  // so that a receiver's digest check can be seen to work.
  uint64_t corrupt_chunk = 0;
};

// Fetch is served raw: each chunk is a ByteBuffer whose data slice points into the mapped
// blob (kept alive by the slice), so the bytes go from the page cache to the socket without
// a copy in user space. The bytes on the wire are a BlobChunk; receivers parse it as one.
class TensorService final
    : public v1::Tensors::WithRawCallbackMethod_Fetch<v1::Tensors::CallbackService> {
 public:
  TensorService(std::shared_ptr<const BlobSource> source, TensorServiceOptions options = {})
      : source_(std::move(source)), options_(options) {}

  grpc::ServerUnaryReactor* Manifest(grpc::CallbackServerContext* context,
                                     const v1::ManifestRequest* request,
                                     v1::ManifestResponse* response) override;
  grpc::ServerWriteReactor<grpc::ByteBuffer>* Fetch(grpc::CallbackServerContext* context,
                                                    const grpc::ByteBuffer* request) override;

  uint64_t bytes_sent() const { return bytes_sent_.load(); }

 private:
  friend class FetchReactor;
  std::shared_ptr<const BlobSource> source_;
  TensorServiceOptions options_;
  std::atomic<int> streams_{0};
  std::atomic<uint64_t> chunks_sent_{0};
  std::atomic<uint64_t> bytes_sent_{0};
};

}  // namespace tandem::fetch
