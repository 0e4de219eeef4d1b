// A read-only memory map of a whole file (RAII, non-copyable).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace tandem {

// What names one version of a file: a rewrite or a replacement changes one of these.
struct FileIdentity {
  uint64_t device = 0;
  uint64_t inode = 0;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  bool operator==(const FileIdentity&) const = default;
};

// The identity of the file `path` names now.
absl::StatusOr<FileIdentity> StatFileIdentity(const std::string& path);

class MappedFile {
 public:
  static absl::StatusOr<std::unique_ptr<MappedFile>> Open(const std::string& path);
  // The same interface over bytes held in memory (fuzzing, tests); `name` stands for the
  // path in messages.
  static std::unique_ptr<MappedFile> FromBytes(std::string name, std::vector<uint8_t> bytes);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }
  // The file as it was when mapped.
  const FileIdentity& identity() const { return identity_; }

  // Tells the kernel that [offset, offset + length) will be read soon.
  void WillNeed(size_t offset, size_t length) const;
  // Tells the kernel that [offset, offset + length) can be dropped from memory.
  void DontNeed(size_t offset, size_t length) const;

 private:
  MappedFile(std::string path, const uint8_t* data, size_t size, FileIdentity identity)
      : path_(std::move(path)), data_(data), size_(size), identity_(identity) {}
  std::string path_;
  std::vector<uint8_t> owned_;  // FromBytes: the bytes (nothing is mapped)
  const uint8_t* data_;
  size_t size_;
  FileIdentity identity_;
};

}  // namespace tandem
