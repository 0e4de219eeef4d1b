#include "fetch/tensor_service.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/wire_format_lite.h"
#include "net/convert.h"
#include "net/frames.h"
#include "net/peer_auth.h"

namespace tandem::fetch {
namespace {

std::string Key(const Sha256Digest& d) { return std::string(d.begin(), d.end()); }

}  // namespace

ModelFileSource::ModelFileSource(std::shared_ptr<const GgufFile> file, const ModelDigests& digests)
    : file_(std::move(file)), manifest_(MakeManifest(*file_, digests)) {
  blobs_[manifest_.header_sha256()] = {0, file_->data_offset()};
  const uint8_t* base = file_->mapping().data();
  for (size_t i = 0; i < file_->tensors().size() && i < digests.tensor_digests.size(); ++i) {
    const GgufTensor& t = file_->tensors()[i];
    blobs_.try_emplace(Key(digests.tensor_digests[i]), static_cast<uint64_t>(t.data - base),
                       t.size_bytes);
  }
}

absl::StatusOr<Blob> ModelFileSource::Find(const Sha256Digest& digest, uint64_t size) const {
  auto it = blobs_.find(Key(digest));
  if (it == blobs_.end() || it->second.second != size) {
    return absl::NotFoundError(
        absl::StrCat("no blob ", Sha256Hex(digest), " of ", size, " bytes in this model"));
  }
  return Blob{file_->mapping().data() + it->second.first, size, &file_->mapping(), file_};
}

absl::StatusOr<Blob> CacheSource::Find(const Sha256Digest& digest, uint64_t size) const {
  if (!cache_->Has(digest, size)) {
    return absl::NotFoundError(absl::StrCat("no blob ", Sha256Hex(digest), " in this cache"));
  }
  // The receiver checks the digest; a damaged blob costs it a fetch from elsewhere.
  auto blob = cache_->Map(digest, size, /*verify=*/false);
  if (!blob.ok()) return absl::NotFoundError(blob.status().message());
  const MappedFile* mapping = blob->get();
  return Blob{mapping->data(), size, mapping, *blob};
}

grpc::ServerUnaryReactor* TensorService::Manifest(grpc::CallbackServerContext* context,
                                                  const v1::ManifestRequest* request,
                                                  v1::ManifestResponse* response) {
  auto* reactor = context->DefaultReactor();
  // The weights go to members that run them: nodes (and the coordinator).
  if (grpc::Status s = AuthorizePeer(*context, "Manifest", kRoleNode | kRoleCoordinator); !s.ok()) {
    reactor->Finish(s);
    return reactor;
  }
  if (request->protocol_version() != kProtocolVersion) {
    reactor->Finish(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                                 absl::StrCat("protocol version ", request->protocol_version(),
                                              ", this server speaks ", kProtocolVersion)));
    return reactor;
  }
  auto manifest = source_->GetManifest();
  if (!manifest.ok()) {
    reactor->Finish(ToGrpcStatus(manifest.status()));
    return reactor;
  }
  *response = std::move(*manifest);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

namespace {

// A chunk's bytes as a slice of the mapped blob; the slice holds `owner` until gRPC has
// sent it.
grpc::Slice BorrowedSlice(const uint8_t* data, size_t n, const std::shared_ptr<const void>& owner) {
  auto* keep = new std::shared_ptr<const void>(owner);
  return grpc::Slice(
      const_cast<uint8_t*>(data), n,
      [](void* user_data) { delete static_cast<std::shared_ptr<const void>*>(user_data); }, keep);
}

// The bytes of a BlobChunk that come before its data: the offset field, then the data
// field's tag and length.
std::string ChunkHead(uint64_t offset, uint64_t n) {
  v1::BlobChunk head;
  head.set_offset(offset);
  std::string bytes = head.SerializeAsString();
  {
    google::protobuf::io::StringOutputStream out(&bytes);
    google::protobuf::io::CodedOutputStream coded(&out);
    coded.WriteTag(google::protobuf::internal::WireFormatLite::MakeTag(
        v1::BlobChunk::kDataFieldNumber,
        google::protobuf::internal::WireFormatLite::WIRETYPE_LENGTH_DELIMITED));
    coded.WriteVarint64(n);
  }
  return bytes;
}

}  // namespace

// One Fetch stream: the blob's bytes from the asked offset, a chunk per write.
class FetchReactor : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  FetchReactor(TensorService* service, const grpc::ByteBuffer& request_bytes,
               const grpc::Status& authorized)
      : service_(service) {
    if (!authorized.ok()) {
      Finish(authorized);
      return;
    }
    if (++service_->streams_ > service_->options_.max_streams) {
      --service_->streams_;
      Finish(grpc::Status(
          grpc::StatusCode::RESOURCE_EXHAUSTED,
          absl::StrCat("this server already sends ", service_->options_.max_streams, " blobs")));
      return;
    }
    counted_ = true;
    grpc::ByteBuffer copy = request_bytes;  // Deserialize consumes its buffer
    v1::FetchRequest request;
    if (!grpc::SerializationTraits<v1::FetchRequest>::Deserialize(&copy, &request).ok()) {
      Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "the Fetch request does not parse"));
      return;
    }
    absl::Status s = Start(request);
    if (!s.ok()) {
      Finish(ToGrpcStatus(s));
      return;
    }
    Next();
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "the receiver went away"));
      return;
    }
    Next();
  }

  void OnDone() override {
    if (counted_) --service_->streams_;
    delete this;
  }

 private:
  absl::Status Start(const v1::FetchRequest& r) {
    if (r.protocol_version() != kProtocolVersion) {
      return absl::FailedPreconditionError(absl::StrCat("protocol version ", r.protocol_version(),
                                                        ", this server speaks ", kProtocolVersion));
    }
    if (r.sha256().size() != Sha256Digest().size()) {
      return absl::InvalidArgumentError("a blob is named by a 32-byte SHA-256 digest");
    }
    Sha256Digest digest;
    std::copy(r.sha256().begin(), r.sha256().end(), digest.begin());
    auto blob = service_->source_->Find(digest, r.size());
    if (!blob.ok()) return blob.status();
    if (r.offset() > blob->size) {
      return absl::OutOfRangeError(
          absl::StrCat("offset ", r.offset(), " is past the blob's ", blob->size, " bytes"));
    }
    blob_ = std::move(*blob);
    offset_ = r.offset();
    return absl::OkStatus();
  }

  void Next() {
    if (offset_ >= blob_.size) {
      Finish(grpc::Status::OK);
      return;
    }
    const uint64_t chunk = service_->options_.chunk_bytes;
    const uint64_t n = std::min(chunk, blob_.size - offset_);
    // Read-ahead of the next chunks keeps a cold file from stalling this thread long.
    if (blob_.mapping != nullptr) {
      blob_.mapping->WillNeed(static_cast<size_t>(blob_.data - blob_.mapping->data() + offset_ + n),
                              4 * chunk);
    }
    const std::string head = ChunkHead(offset_, n);
    grpc::Slice slices[2] = {grpc::Slice(head), grpc::Slice()};
    const uint64_t number = ++service_->chunks_sent_;
    if (number == service_->options_.corrupt_chunk) {
      std::string bad(reinterpret_cast<const char*>(blob_.data + offset_), n);
      bad[n / 2] ^= 0x5a;
      slices[1] = grpc::Slice(bad);
    } else {
      slices[1] = BorrowedSlice(blob_.data + offset_, n, blob_.owner);
    }
    chunk_ = grpc::ByteBuffer(slices, 2);
    offset_ += n;
    service_->bytes_sent_ += n;
    StartWrite(&chunk_);
  }

  TensorService* service_;
  bool counted_ = false;
  Blob blob_;
  uint64_t offset_ = 0;
  grpc::ByteBuffer chunk_;
};

grpc::ServerWriteReactor<grpc::ByteBuffer>* TensorService::Fetch(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request) {
  return new FetchReactor(this, *request,
                          AuthorizePeer(*context, "Fetch", kRoleNode | kRoleCoordinator));
}

}  // namespace tandem::fetch
