// The content-addressed cache of a node without the model file. Every blob (a model's
// header or one tensor) is a file named by its SHA-256:
//   DIR/blobs/<64 hex digits>    complete, its digest checked when it was committed
//   DIR/partial/<64 hex digits>  being fetched; its length is where a transfer resumes
// File names are made here from digests, never from a string off the wire. The cache
// survives restarts and is shared by every model and plan: a blob present is never moved
// again.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "model/mapped_file.h"
#include "model/sha256.h"

namespace tandem::fetch {

class BlobCache {
 public:
  // Creates DIR/blobs and DIR/partial when missing.
  static absl::StatusOr<std::unique_ptr<BlobCache>> Open(const std::string& dir);

  const std::string& dir() const { return dir_; }
  std::string BlobPath(const Sha256Digest& digest) const;
  std::string PartialPath(const Sha256Digest& digest) const;

  // A complete blob of `size` bytes is there (its size is checked, not its digest).
  bool Has(const Sha256Digest& digest, uint64_t size) const;
  // The complete blob, mapped. With `verify`, its digest is checked first and a damaged
  // blob is deleted (DataLoss), so that it is fetched again.
  absl::StatusOr<std::shared_ptr<const MappedFile>> Map(const Sha256Digest& digest, uint64_t size,
                                                        bool verify) const;
  // Bytes the cache's files take on disk (allocated blocks).
  uint64_t DiskBytes() const;

  // Marks a complete blob used now (its modification time), for Prune. Map does it.
  void Touch(const Sha256Digest& digest) const;
  struct PruneResult {
    size_t files_removed = 0;
    uint64_t bytes_removed = 0;
    uint64_t bytes_left = 0;  // on disk, after
  };
  // Removes blobs and partial files whose digest is not in `keep` (digest bytes), least
  // recently used first, until the cache's files take at most `max_bytes` on disk (or
  // only kept ones are left). Files not named by a digest are neither counted nor touched.
  PruneResult Prune(uint64_t max_bytes, const absl::flat_hash_set<std::string>& keep) const;

 private:
  explicit BlobCache(std::string dir) : dir_(std::move(dir)) {}
  std::string dir_;
};

// One blob being written into the cache: opens (or resumes) its partial file, takes the
// bytes that follow in order, and on Commit checks the digest and moves the file into
// place. RAII: the file descriptor closes with the writer; the partial file stays for a
// later resume unless the digest was wrong.
class BlobWriter {
 public:
  // Resumes from what the partial file holds (hashing it again); a partial file longer
  // than `size` is started over.
  static absl::StatusOr<std::unique_ptr<BlobWriter>> Begin(const BlobCache& cache,
                                                           const Sha256Digest& digest,
                                                           uint64_t size);
  ~BlobWriter();
  BlobWriter(const BlobWriter&) = delete;
  BlobWriter& operator=(const BlobWriter&) = delete;

  uint64_t offset() const { return offset_; }
  uint64_t resumed_bytes() const { return resumed_; }
  // Writing to the cache failed (a full or read-only disk): no other source helps.
  bool failed() const { return failed_; }
  // The next bytes of the blob; more than its size is an error.
  absl::Status Append(const void* data, size_t n);
  // All bytes present and the digest right: the blob is in the cache. A wrong digest
  // deletes the partial file and is DataLoss.
  absl::Status Commit();

 private:
  BlobWriter(const BlobCache& cache, const Sha256Digest& digest, uint64_t size)
      : cache_(cache), digest_(digest), size_(size) {}
  const BlobCache& cache_;
  Sha256Digest digest_;
  uint64_t size_;
  uint64_t offset_ = 0;
  uint64_t resumed_ = 0;
  bool failed_ = false;
  int fd_ = -1;
  // A pipe the bytes pass through into the file (vmsplice, then splice); -1 once that
  // failed (a file system without splice): plain write() then.
  int pipe_[2] = {-1, -1};
  bool splice_tried_ = false;
  // Moves bytes into the file through the pipe; how many moved (the rest, on an error).
  size_t SpliceIn(const uint8_t* data, size_t n);
  void ClosePipe();
  Sha256 hash_;
};

// SHA-256 of a mapped blob, in pieces that are dropped from memory once hashed.
Sha256Digest DigestOf(const MappedFile& blob);

}  // namespace tandem::fetch
