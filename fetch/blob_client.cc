#include "fetch/blob_client.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "net/convert.h"
#include "net/forward_client.h"
#include "net/frames.h"
#include "net/link_security.h"
#include "security/pki.h"

namespace tandem::fetch {
namespace {

constexpr auto kManifestDeadline = std::chrono::seconds(30);
// A blob's stream must end within a minute plus a second per MiB (a link slower than
// 1 MiB/s, or a stalled sender, is given up on; what arrived stays for a resume).
constexpr auto kBlobDeadlineBase = std::chrono::seconds(60);

absl::Status WithAddress(const std::string& address, const grpc::Status& s) {
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                      absl::StrCat(address, ": ", s.error_message()));
}

}  // namespace

BlobClient::BlobClient(const FetchSource& source)
    // With certificates the server must present the identity the coordinator gave for it
    // (a peer node), or the coordinator's own.
    : address_(source.address),
      stub_(v1::Tensors::NewStub(MakeChannel(
          address_, source.identity.empty() ? std::string(security::kCoordinatorIdentity)
                                            : source.identity))) {}

absl::StatusOr<v1::ManifestResponse> BlobClient::GetManifest() {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + kManifestDeadline);
  v1::ManifestRequest request;
  request.set_protocol_version(kProtocolVersion);
  v1::ManifestResponse response;
  grpc::Status s = stub_->Manifest(&ctx, request, &response);
  if (!s.ok()) return WithAddress(address_, s);
  return response;
}

absl::Status BlobClient::Fetch(const BlobRef& blob, BlobWriter& writer,
                               const std::function<void(uint64_t)>& on_bytes) {
  if (writer.offset() >= blob.size) return absl::OkStatus();
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + kBlobDeadlineBase +
                   std::chrono::seconds((blob.size - writer.offset()) >> 20));
  v1::FetchRequest request;
  request.set_protocol_version(kProtocolVersion);
  request.set_sha256(std::string(blob.digest.begin(), blob.digest.end()));
  request.set_size(blob.size);
  request.set_offset(writer.offset());
  auto reader = stub_->Fetch(&ctx, request);
  v1::BlobChunk chunk;
  absl::Status bad;
  while (reader->Read(&chunk)) {
    const uint64_t n = chunk.data().size();
    if (chunk.offset() != writer.offset() || n == 0 || n > kMaxChunkBytes ||
        n > blob.size - writer.offset()) {
      bad = absl::DataLossError(absl::StrCat(
          address_, ": blob ", Sha256Hex(blob.digest), ": a chunk of ", n, " bytes at offset ",
          chunk.offset(), " does not follow byte ", writer.offset(), " of ", blob.size));
      ctx.TryCancel();
      break;
    }
    bad = writer.Append(chunk.data().data(), n);
    if (!bad.ok()) {
      ctx.TryCancel();
      break;
    }
    if (on_bytes) on_bytes(n);
  }
  grpc::Status s = reader->Finish();
  if (!bad.ok()) return bad;
  if (!s.ok()) return WithAddress(address_, s);
  if (writer.offset() != blob.size) {
    return absl::DataLossError(absl::StrCat(address_, ": blob ", Sha256Hex(blob.digest),
                                            " ended after ", writer.offset(), " of ", blob.size,
                                            " bytes"));
  }
  return absl::OkStatus();
}

}  // namespace tandem::fetch
