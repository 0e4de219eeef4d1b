// A model's manifest: what a node without the model file needs to know to fetch just its
// layers. The GGUF header (as a blob named by its SHA-256) and one SHA-256 per tensor; the
// fingerprint (model/fingerprint.h) is computed from exactly these, so a node checks that
// the manifest, the header and the fingerprint it registers with agree, and then checks
// every tensor it receives on its own.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/fingerprint.h"
#include "model/gguf.h"
#include "model/sha256.h"
#include "tandem.pb.h"

namespace tandem::fetch {

// Bounds on what a manifest from the wire may claim (a model has a few thousand tensors
// and a header of a few tens of MiB at most).
inline constexpr uint64_t kMaxManifestTensors = 1 << 16;
inline constexpr uint64_t kMaxHeaderBytes = uint64_t{256} << 20;
inline constexpr uint64_t kMaxModelBytes = uint64_t{1} << 42;  // 4 TiB

// One blob of a model: its digest and size.
struct BlobRef {
  Sha256Digest digest{};
  uint64_t size = 0;
};

// The manifest as checked numbers.
struct Manifest {
  std::string fingerprint;  // 64 hex digits
  uint64_t file_size = 0;
  BlobRef header;
  std::vector<Sha256Digest> tensor_digests;
};

// The manifest of a model file whose digests are known.
v1::ManifestResponse MakeManifest(const GgufFile& file, const ModelDigests& digests);
// The digest of a file's header (its first data_offset bytes).
Sha256Digest HeaderDigest(const GgufFile& file);

// Checks a manifest from the wire: counts and sizes within bounds, digests of 32 bytes.
absl::StatusOr<Manifest> ParseManifest(const v1::ManifestResponse& response);

// Checks a header view (GgufFile::FromHeader) against its manifest: as many tensors as
// digests, and the fingerprint they make is the manifest's.
absl::Status CheckHeaderAgainstManifest(const GgufFile& header, const Manifest& manifest);

// The tensors (indices into the table) a stage of layers [layer_first, layer_last) of an
// `n_layer`-layer model reads: its layers' "blk.N." tensors, the token embedding on the
// first stage, the output norm and matrix (the embedding when tied) on the last, and every
// tensor that belongs to no layer and neither end (rope frequencies).
std::vector<size_t> StageTensors(const GgufFile& header, int n_layer, int layer_first,
                                 int layer_last);

// The layer a tensor belongs to ("blk.N."), or -1.
int TensorLayer(const std::string& name);

}  // namespace tandem::fetch
