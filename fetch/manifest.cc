#include "fetch/manifest.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "net/frames.h"

namespace tandem::fetch {
namespace {

absl::StatusOr<Sha256Digest> DigestFromBytes(const std::string& bytes, absl::string_view what) {
  Sha256Digest d;
  if (bytes.size() != d.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("manifest: ", what, " is ", bytes.size(), " bytes, not a SHA-256 digest"));
  }
  std::copy(bytes.begin(), bytes.end(), d.begin());
  return d;
}

std::string DigestBytes(const Sha256Digest& d) { return std::string(d.begin(), d.end()); }

}  // namespace

Sha256Digest HeaderDigest(const GgufFile& file) {
  Sha256 h;
  h.Update(file.mapping().data(), file.data_offset());
  return h.Finish();
}

v1::ManifestResponse MakeManifest(const GgufFile& file, const ModelDigests& digests) {
  v1::ManifestResponse m;
  m.set_protocol_version(kProtocolVersion);
  m.set_fingerprint(Sha256Hex(digests.fingerprint));
  m.set_file_size(file.mapping().size());
  m.set_header_sha256(DigestBytes(HeaderDigest(file)));
  m.set_header_size(file.data_offset());
  for (const Sha256Digest& d : digests.tensor_digests) m.add_tensor_sha256(DigestBytes(d));
  return m;
}

absl::StatusOr<Manifest> ParseManifest(const v1::ManifestResponse& r) {
  Manifest m;
  Sha256Digest fingerprint;
  if (!ParseSha256Hex(r.fingerprint(), &fingerprint)) {
    return absl::InvalidArgumentError("manifest: the fingerprint is not 64 lowercase hex digits");
  }
  m.fingerprint = r.fingerprint();
  if (r.file_size() == 0 || r.file_size() > kMaxModelBytes) {
    return absl::InvalidArgumentError(absl::StrCat("manifest: a model file of ", r.file_size(),
                                                   " bytes is out of bounds (1 to ", kMaxModelBytes,
                                                   ")"));
  }
  m.file_size = r.file_size();
  if (r.header_size() == 0 || r.header_size() > kMaxHeaderBytes ||
      r.header_size() > r.file_size()) {
    return absl::InvalidArgumentError(absl::StrCat("manifest: a header of ", r.header_size(),
                                                   " bytes is out of bounds (1 to ",
                                                   kMaxHeaderBytes, " within the file)"));
  }
  m.header.size = r.header_size();
  auto header = DigestFromBytes(r.header_sha256(), "the header digest");
  if (!header.ok()) return header.status();
  m.header.digest = *header;
  if (static_cast<uint64_t>(r.tensor_sha256_size()) > kMaxManifestTensors) {
    return absl::InvalidArgumentError(absl::StrCat("manifest: ", r.tensor_sha256_size(),
                                                   " tensors exceed the limit of ",
                                                   kMaxManifestTensors));
  }
  m.tensor_digests.reserve(r.tensor_sha256_size());
  for (int i = 0; i < r.tensor_sha256_size(); ++i) {
    auto d = DigestFromBytes(r.tensor_sha256(i), absl::StrCat("tensor #", i, "'s digest"));
    if (!d.ok()) return d.status();
    m.tensor_digests.push_back(*d);
  }
  return m;
}

absl::Status CheckHeaderAgainstManifest(const GgufFile& header, const Manifest& manifest) {
  if (header.tensors().size() != manifest.tensor_digests.size()) {
    return absl::InvalidArgumentError(absl::StrCat("manifest: ", manifest.tensor_digests.size(),
                                                   " tensor digests for a header of ",
                                                   header.tensors().size(), " tensors"));
  }
  if (Sha256Hex(FingerprintFromTensorDigests(header, manifest.tensor_digests)) !=
      manifest.fingerprint) {
    return absl::DataLossError(
        "manifest: the header and tensor digests do not make the model's fingerprint");
  }
  return absl::OkStatus();
}

int TensorLayer(const std::string& name) {
  if (!absl::StartsWith(name, "blk.")) return -1;
  const size_t dot = name.find('.', 4);
  if (dot == std::string::npos) return -1;
  int layer = -1;
  if (!absl::SimpleAtoi(absl::string_view(name).substr(4, dot - 4), &layer) || layer < 0) {
    return -1;
  }
  return layer;
}

std::vector<size_t> StageTensors(const GgufFile& header, int n_layer, int layer_first,
                                 int layer_last) {
  const bool first = layer_first == 0;
  const bool last = layer_last == n_layer;
  const bool tied = header.FindTensor("output.weight") == nullptr;
  std::vector<size_t> out;
  for (size_t i = 0; i < header.tensors().size(); ++i) {
    const std::string& name = header.tensors()[i].name;
    const int layer = TensorLayer(name);
    bool wanted;
    if (layer >= 0) {
      wanted = layer >= layer_first && layer < layer_last;
    } else if (name == "token_embd.weight") {
      wanted = first || (last && tied);
    } else if (name == "output.weight" || name == "output_norm.weight") {
      wanted = last;
    } else {
      wanted = true;
    }
    if (wanted) out.push_back(i);
  }
  return out;
}

}  // namespace tandem::fetch
