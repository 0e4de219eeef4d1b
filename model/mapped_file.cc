#include "model/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace tandem {
namespace {

FileIdentity IdentityOf(const struct stat& st) {
  FileIdentity id;
  id.device = static_cast<uint64_t>(st.st_dev);
  id.inode = static_cast<uint64_t>(st.st_ino);
  id.size = static_cast<uint64_t>(st.st_size);
  id.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  return id;
}

}  // namespace

absl::StatusOr<FileIdentity> StatFileIdentity(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    int err = errno;
    return absl::NotFoundError(absl::StrCat(path, ": cannot stat: ", std::strerror(err)));
  }
  return IdentityOf(st);
}

absl::StatusOr<std::unique_ptr<MappedFile>> MappedFile::Open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    auto message = absl::StrCat(path, ": cannot open: ", std::strerror(err));
    return err == ENOENT ? absl::NotFoundError(message) : absl::PermissionDeniedError(message);
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return absl::InternalError(absl::StrCat(path, ": cannot stat: ", std::strerror(err)));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a regular file"));
  }
  size_t size = static_cast<size_t>(st.st_size);
  if (size == 0) {
    ::close(fd);
    return absl::InvalidArgumentError(absl::StrCat(path, ": file is empty"));
  }
  void* data = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
  int err = errno;
  ::close(fd);
  if (data == MAP_FAILED) {
    return absl::InternalError(absl::StrCat(path, ": cannot map: ", std::strerror(err)));
  }
  return std::unique_ptr<MappedFile>(
      new MappedFile(path, static_cast<const uint8_t*>(data), size, IdentityOf(st)));
}

std::unique_ptr<MappedFile> MappedFile::FromBytes(std::string name, std::vector<uint8_t> bytes) {
  std::unique_ptr<MappedFile> m(new MappedFile(std::move(name), nullptr, 0, FileIdentity{}));
  m->owned_ = std::move(bytes);
  m->data_ = m->owned_.data();
  m->size_ = m->owned_.size();
  return m;
}

MappedFile::~MappedFile() {
  if (owned_.empty() && data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), size_);
}

namespace {
void Advise(const uint8_t* base, size_t file_size, size_t offset, size_t length, int advice) {
  if (offset >= file_size) return;
  if (length > file_size - offset) length = file_size - offset;
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  size_t begin = offset / page * page;
  ::madvise(const_cast<uint8_t*>(base) + begin, offset + length - begin, advice);
}
}  // namespace

void MappedFile::WillNeed(size_t offset, size_t length) const {
  if (!owned_.empty()) return;
  Advise(data_, size_, offset, length, MADV_WILLNEED);
}

void MappedFile::DontNeed(size_t offset, size_t length) const {
  if (!owned_.empty()) return;
  Advise(data_, size_, offset, length, MADV_DONTNEED);
}

}  // namespace tandem
