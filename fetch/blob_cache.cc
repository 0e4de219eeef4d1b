#include "fetch/blob_cache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <vector>

#include "absl/strings/str_cat.h"

namespace tandem::fetch {
namespace {

absl::Status Errno(absl::string_view what, const std::string& path) {
  const int err = errno;
  return absl::Status(
      err == ENOSPC ? absl::StatusCode::kResourceExhausted : absl::StatusCode::kPermissionDenied,
      absl::StrCat(path, ": cannot ", what, ": ", std::strerror(err)));
}

}  // namespace

Sha256Digest DigestOf(const MappedFile& blob) {
  constexpr size_t kPiece = size_t{8} << 20;
  Sha256 h;
  for (size_t done = 0; done < blob.size(); done += kPiece) {
    const size_t n = std::min(kPiece, blob.size() - done);
    blob.WillNeed(done + n, kPiece);
    h.Update(blob.data() + done, n);
    blob.DontNeed(done, n);
  }
  return h.Finish();
}

absl::StatusOr<std::unique_ptr<BlobCache>> BlobCache::Open(const std::string& dir) {
  if (dir.empty()) return absl::InvalidArgumentError("the cache folder is not named");
  for (const char* sub : {"/blobs", "/partial"}) {
    std::error_code ec;
    std::filesystem::create_directories(dir + sub, ec);
    if (ec) {
      return absl::PermissionDeniedError(
          absl::StrCat(dir, sub, ": cannot create the cache folder: ", ec.message()));
    }
  }
  return std::unique_ptr<BlobCache>(new BlobCache(dir));
}

std::string BlobCache::BlobPath(const Sha256Digest& digest) const {
  return absl::StrCat(dir_, "/blobs/", Sha256Hex(digest));
}

std::string BlobCache::PartialPath(const Sha256Digest& digest) const {
  return absl::StrCat(dir_, "/partial/", Sha256Hex(digest));
}

bool BlobCache::Has(const Sha256Digest& digest, uint64_t size) const {
  struct stat st;
  return ::stat(BlobPath(digest).c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
         static_cast<uint64_t>(st.st_size) == size;
}

absl::StatusOr<std::shared_ptr<const MappedFile>> BlobCache::Map(const Sha256Digest& digest,
                                                                 uint64_t size, bool verify) const {
  const std::string path = BlobPath(digest);
  auto mapped = MappedFile::Open(path);
  if (!mapped.ok()) return mapped.status();
  std::shared_ptr<const MappedFile> blob = std::move(*mapped);
  if (blob->size() != size || (verify && DigestOf(*blob) != digest)) {
    std::error_code ignored;
    std::filesystem::remove(path, ignored);
    return absl::DataLossError(absl::StrCat(path, ": damaged (",
                                            blob->size() != size ? "wrong size" : "wrong SHA-256",
                                            "); removed, to be fetched again"));
  }
  Touch(digest);
  return blob;
}

uint64_t BlobCache::DiskBytes() const {
  uint64_t bytes = 0;
  for (const char* sub : {"/blobs", "/partial"}) {
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(dir_ + sub, ec)) {
      struct stat st;
      if (::lstat(entry.path().c_str(), &st) == 0)
        bytes += static_cast<uint64_t>(st.st_blocks) * 512;
    }
  }
  return bytes;
}

void BlobCache::Touch(const Sha256Digest& digest) const {
  // Best effort: a read-only cache is only pruned in a worse order.
  ::utimensat(AT_FDCWD, BlobPath(digest).c_str(), nullptr, 0);
}

BlobCache::PruneResult BlobCache::Prune(uint64_t max_bytes,
                                        const absl::flat_hash_set<std::string>& keep) const {
  struct Entry {
    std::string path;
    uint64_t bytes;
    struct timespec used;
  };
  std::vector<Entry> candidates;
  PruneResult result;
  for (const char* sub : {"/blobs", "/partial"}) {
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(dir_ + sub, ec)) {
      Sha256Digest digest;
      struct stat st;
      if (!ParseSha256Hex(entry.path().filename().string(), &digest) ||
          ::lstat(entry.path().c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
        continue;
      }
      const uint64_t bytes = static_cast<uint64_t>(st.st_blocks) * 512;
      result.bytes_left += bytes;
      if (!keep.contains(std::string(digest.begin(), digest.end()))) {
        candidates.push_back({entry.path().string(), bytes, st.st_mtim});
      }
    }
  }
  std::sort(candidates.begin(), candidates.end(), [](const Entry& a, const Entry& b) {
    return a.used.tv_sec != b.used.tv_sec ? a.used.tv_sec < b.used.tv_sec
                                          : a.used.tv_nsec < b.used.tv_nsec;
  });
  for (const Entry& e : candidates) {
    if (result.bytes_left <= max_bytes) break;
    if (::unlink(e.path.c_str()) != 0) continue;
    ++result.files_removed;
    result.bytes_removed += e.bytes;
    result.bytes_left -= e.bytes;
  }
  return result;
}

absl::StatusOr<std::unique_ptr<BlobWriter>> BlobWriter::Begin(const BlobCache& cache,
                                                              const Sha256Digest& digest,
                                                              uint64_t size) {
  std::unique_ptr<BlobWriter> w(new BlobWriter(cache, digest, size));
  const std::string path = cache.PartialPath(digest);
  w->fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (w->fd_ < 0) return Errno("open", path);
  struct stat st;
  if (::fstat(w->fd_, &st) != 0) return Errno("stat", path);
  uint64_t have = static_cast<uint64_t>(st.st_size);
  if (have > size) {
    if (::ftruncate(w->fd_, 0) != 0) return Errno("truncate", path);
    have = 0;
  }
  // What a previous transfer left is hashed again: the digest covers the whole blob.
  std::vector<uint8_t> buffer(std::min<uint64_t>(have, uint64_t{4} << 20));
  uint64_t done = 0;
  while (done < have) {
    const ssize_t n = ::pread(w->fd_, buffer.data(), std::min<uint64_t>(buffer.size(), have - done),
                              static_cast<off_t>(done));
    if (n <= 0) break;  // shorter than it said: resume from what was read
    w->hash_.Update(buffer.data(), static_cast<size_t>(n));
    done += static_cast<uint64_t>(n);
  }
  if (done != have && ::ftruncate(w->fd_, static_cast<off_t>(done)) != 0) {
    return Errno("truncate", path);
  }
  if (::lseek(w->fd_, static_cast<off_t>(done), SEEK_SET) < 0) return Errno("seek", path);
  w->offset_ = done;
  w->resumed_ = done;
  return w;
}

BlobWriter::~BlobWriter() {
  ClosePipe();
  if (fd_ >= 0) ::close(fd_);
}

void BlobWriter::ClosePipe() {
  for (int& p : pipe_) {
    if (p >= 0) ::close(p);
    p = -1;
  }
}

size_t BlobWriter::SpliceIn(const uint8_t* data, size_t n) {
  // The kernel copies the pipe's pages into the page cache itself, as `cp` does: on
  // virtual machines that hand free memory back to their host, write() from user memory
  // into fresh page-cache pages ran 4-5x slower (bench/fetch_bench.sh). The pipe is
  // drained before returning, so the caller's buffer is not referenced afterwards.
  if (!splice_tried_) {
    splice_tried_ = true;
    if (::pipe2(pipe_, O_CLOEXEC) != 0) return 0;
    ::fcntl(pipe_[1], F_SETPIPE_SZ, 1 << 20);  // best effort: the default 64 KiB works too
  }
  if (pipe_[0] < 0) return 0;
  size_t moved = 0;
  while (moved < n) {
    struct iovec v = {const_cast<uint8_t*>(data + moved), n - moved};
    const ssize_t in = ::vmsplice(pipe_[1], &v, 1, 0);
    if (in < 0 && errno == EINTR) continue;
    if (in <= 0) break;
    size_t left = static_cast<size_t>(in);
    while (left > 0) {
      const ssize_t out = ::splice(pipe_[0], nullptr, fd_, nullptr, left, SPLICE_F_MOVE);
      if (out < 0 && errno == EINTR) continue;
      if (out <= 0) {
        // What is still in the pipe is dropped with it; the caller writes it again.
        ClosePipe();
        return moved;
      }
      left -= static_cast<size_t>(out);
      moved += static_cast<size_t>(out);
    }
  }
  if (moved < n) ClosePipe();
  return moved;
}

absl::Status BlobWriter::Append(const void* data, size_t n) {
  if (n > size_ - offset_) {
    return absl::OutOfRangeError(absl::StrCat("blob ", Sha256Hex(digest_), ": ", offset_ + n,
                                              " bytes sent for a blob of ", size_));
  }
  const auto* p = static_cast<const uint8_t*>(data);
  const size_t spliced = SpliceIn(p, n);
  p += spliced;
  size_t left = n - spliced;
  while (left > 0) {
    const ssize_t w = ::write(fd_, p, left);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      failed_ = true;
      return Errno("write", cache_.PartialPath(digest_));
    }
    p += w;
    left -= static_cast<size_t>(w);
  }
  hash_.Update(data, n);
  offset_ += n;
  return absl::OkStatus();
}

absl::Status BlobWriter::Commit() {
  const std::string partial = cache_.PartialPath(digest_);
  if (offset_ != size_) {
    return absl::DataLossError(
        absl::StrCat("blob ", Sha256Hex(digest_), ": ", offset_, " of ", size_, " bytes received"));
  }
  if (hash_.Finish() != digest_) {
    ::close(fd_);
    fd_ = -1;
    std::error_code ignored;
    std::filesystem::remove(partial, ignored);
    return absl::DataLossError(
        absl::StrCat("blob ", Sha256Hex(digest_), ": SHA-256 of the bytes received differs"));
  }
  ::close(fd_);
  fd_ = -1;
  std::error_code ec;
  std::filesystem::rename(partial, cache_.BlobPath(digest_), ec);
  if (ec) {
    failed_ = true;
    return absl::PermissionDeniedError(
        absl::StrCat(cache_.BlobPath(digest_), ": cannot move into place: ", ec.message()));
  }
  return absl::OkStatus();
}

}  // namespace tandem::fetch
