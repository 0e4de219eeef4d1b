// A model fingerprint: two processes agree on it only when they hold the same model.
//
// Every tensor's bytes are hashed with SHA-256; the fingerprint is the SHA-256 of a
// version tag, the header (metadata and tensor table: every name, type, shape and offset)
// and those tensor digests in table order. So the header and the tensor digests (a
// manifest) are enough to check the fingerprint, and each tensor can then be checked on
// its own. Padding between tensors is not covered: it holds no weights.
#pragma once

#include <string>
#include <vector>

#include "model/gguf.h"
#include "model/sha256.h"

namespace tandem {

struct ModelDigests {
  Sha256Digest fingerprint;
  std::vector<Sha256Digest> tensor_digests;  // one per tensor, in tensor table order
};

// Hashes the header and every tensor's bytes in one pass over the mapping.
ModelDigests ComputeModelDigests(const GgufFile& file);

// The fingerprint from the header and given tensor digests; reads no tensor data.
// `tensor_digests` must hold one digest per tensor.
Sha256Digest FingerprintFromTensorDigests(const GgufFile& file,
                                          const std::vector<Sha256Digest>& tensor_digests);

struct FingerprintOptions {
  // Where to keep the digest sidecar; empty: $XDG_CACHE_HOME/tandem or ~/.cache/tandem
  // (model/digest_cache.h), never beside the model.
  std::string cache_dir;
};

enum class DigestSource { kComputed, kSidecar };

// The model's digests from a sidecar that matches the file, else computed (and the
// sidecar then written, when the file did not change meanwhile). A sidecar is trusted only
// when its key matches and its fingerprint agrees with the header and its tensor digests;
// a missing, stale or damaged sidecar costs a re-hash, never an error. `source`, when
// given, tells which happened.
ModelDigests LoadOrComputeModelDigests(const GgufFile& file, const FingerprintOptions& options = {},
                                       DigestSource* source = nullptr);

// The fingerprint as 64 lowercase hex digits (LoadOrComputeModelDigests).
std::string ModelFingerprint(const GgufFile& file, const FingerprintOptions& options = {});

}  // namespace tandem
