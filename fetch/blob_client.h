// The client side of the Tensors service: a manifest, and one blob streamed into the
// cache from where its partial file ends.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "fetch/blob_cache.h"
#include "fetch/manifest.h"
#include "tandem.grpc.pb.h"

namespace tandem::fetch {

// Where blobs come from: a Tensors server's address and, on links with certificates, the
// identity its certificate must name (empty: the coordinator's).
struct FetchSource {
  std::string address;
  std::string identity;
};

class BlobClient {
 public:
  explicit BlobClient(const FetchSource& source);
  const std::string& address() const { return address_; }

  absl::StatusOr<v1::ManifestResponse> GetManifest();
  // Streams `blob` from writer->offset() to its end into `writer`; every chunk is checked
  // (in order, at most 1 MiB + slack, within the blob) before it is written. `on_bytes`
  // is told each chunk's size. Does not commit.
  absl::Status Fetch(const BlobRef& blob, BlobWriter& writer,
                     const std::function<void(uint64_t)>& on_bytes);

 private:
  std::string address_;
  std::unique_ptr<v1::Tensors::Stub> stub_;
};

// Largest chunk a receiver accepts.
inline constexpr uint64_t kMaxChunkBytes = (uint64_t{1} << 20) + 4096;

}  // namespace tandem::fetch
