#include "model/fingerprint.h"

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <system_error>

#include "model/digest_cache.h"

namespace tandem {
namespace {

// Changing what the fingerprint covers changes this tag, so old and new never match.
constexpr absl::string_view kSchemeTag = "tandem-model-sha256-v1";

}  // namespace

Sha256Digest FingerprintFromTensorDigests(const GgufFile& file,
                                          const std::vector<Sha256Digest>& tensor_digests) {
  Sha256 h;
  h.Update(kSchemeTag);
  h.UpdateU64(file.data_offset());
  h.Update(file.mapping().data(), file.data_offset());
  h.UpdateU64(tensor_digests.size());
  for (const Sha256Digest& d : tensor_digests) h.Update(d.data(), d.size());
  return h.Finish();
}

ModelDigests ComputeModelDigests(const GgufFile& file) {
  const uint8_t* base = file.mapping().data();
  ModelDigests digests;
  digests.tensor_digests.reserve(file.tensors().size());
  Sha256 h;
  // Pieces of a few MiB: read-ahead keeps up, and each piece is dropped from this
  // process's mappings once hashed, so a node's resident memory stays its shard.
  constexpr uint64_t kPiece = uint64_t{8} << 20;
  for (const GgufTensor& t : file.tensors()) {
    const size_t offset = static_cast<size_t>(t.data - base);
    for (uint64_t done = 0; done < t.size_bytes; done += kPiece) {
      const uint64_t n = std::min(kPiece, t.size_bytes - done);
      file.mapping().WillNeed(offset + done + n, kPiece);
      h.Update(t.data + done, n);
      file.mapping().DontNeed(offset + done, n);
    }
    digests.tensor_digests.push_back(h.Finish());
  }
  digests.fingerprint = FingerprintFromTensorDigests(file, digests.tensor_digests);
  return digests;
}

ModelDigests LoadOrComputeModelDigests(const GgufFile& file, const FingerprintOptions& options,
                                       DigestSource* source) {
  std::error_code ec;
  std::filesystem::path absolute = std::filesystem::absolute(file.path(), ec);
  const bool cacheable = !ec;
  DigestCacheKey key{absolute.string(), file.mapping().identity()};
  const size_t n_tensors = file.tensors().size();
  if (cacheable) {
    std::optional<CachedDigests> cached = ReadDigestSidecar(key, n_tensors, options.cache_dir);
    if (cached &&
        FingerprintFromTensorDigests(file, cached->tensor_digests) == cached->fingerprint) {
      if (source != nullptr) *source = DigestSource::kSidecar;
      return ModelDigests{cached->fingerprint, std::move(cached->tensor_digests)};
    }
  }
  ModelDigests digests = ComputeModelDigests(file);
  if (source != nullptr) *source = DigestSource::kComputed;
  // Only remember digests of a file that stayed the same while it was hashed. A sidecar
  // that cannot be written costs a re-hash next time, nothing more.
  auto now = StatFileIdentity(file.path());
  if (cacheable && now.ok() && *now == key.identity) {
    WriteDigestSidecar(key, CachedDigests{digests.fingerprint, digests.tensor_digests},
                       options.cache_dir)
        .IgnoreError();
  }
  return digests;
}

std::string ModelFingerprint(const GgufFile& file, const FingerprintOptions& options) {
  return Sha256Hex(LoadOrComputeModelDigests(file, options).fingerprint);
}

}  // namespace tandem
