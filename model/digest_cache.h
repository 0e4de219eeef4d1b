// The sidecar that remembers a model's SHA-256 digests so a restart does not re-hash it.
//
// It is keyed by the model's absolute path and identity (device, inode, size, mtime in ns);
// a sidecar whose key differs, or that is malformed in any way, is ignored. It lives in
// a cache folder ($XDG_CACHE_HOME/tandem or ~/.cache/tandem, or one the caller names),
// never beside the model.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "model/mapped_file.h"
#include "model/sha256.h"

namespace tandem {

struct DigestCacheKey {
  std::string absolute_path;
  FileIdentity identity;
};

struct CachedDigests {
  Sha256Digest fingerprint;
  std::vector<Sha256Digest> tensor_digests;
};

// The sidecar's text, and its strict inverse: nullopt unless `text` is exactly what
// FormatDigestSidecar wrote for `key` with `n_tensors` tensor digests.
std::string FormatDigestSidecar(const DigestCacheKey& key, const CachedDigests& digests);
std::optional<CachedDigests> ParseDigestSidecar(absl::string_view text, const DigestCacheKey& key,
                                                size_t n_tensors);

// Where the sidecar for `absolute_path` may be, in the order to try: only inside
// `cache_dir` when one is given, else beside the model and then the user's cache folder.
std::vector<std::string> DigestSidecarPaths(const std::string& absolute_path,
                                            const std::string& cache_dir);

// The first sidecar among DigestSidecarPaths that parses for `key`; nullopt when none does.
std::optional<CachedDigests> ReadDigestSidecar(const DigestCacheKey& key, size_t n_tensors,
                                               const std::string& cache_dir);
// Writes the sidecar (atomically: a temporary file, then a rename) to the first place
// among DigestSidecarPaths that accepts it.
absl::Status WriteDigestSidecar(const DigestCacheKey& key, const CachedDigests& digests,
                                const std::string& cache_dir);

}  // namespace tandem
