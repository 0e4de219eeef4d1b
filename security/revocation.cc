#include "security/revocation.h"

#include <sys/stat.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "security/pki.h"

namespace tandem::security {
namespace {

absl::flat_hash_set<std::string> ParseRevoked(const std::string& text) {
  absl::flat_hash_set<std::string> out;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (!line.empty() && line[0] != '#') out.insert(std::string(line));
  }
  return out;
}

}  // namespace

RevocationList::RevocationList(std::string dir) : path_(dir + "/" + kRevokedFile) {}

bool RevocationList::IsRevoked(const std::string& identity) {
  std::lock_guard<std::mutex> lock(mutex_);
  struct stat st;
  if (::stat(path_.c_str(), &st) != 0) {
    revoked_.clear();
    size_ = -1;
  } else if (st.st_size != size_ || st.st_mtim.tv_sec != mtime_.tv_sec ||
             st.st_mtim.tv_nsec != mtime_.tv_nsec) {
    absl::StatusOr<std::string> text = ReadWholeFile(path_);
    // An unreadable list keeps the last one read: a revocation is never forgotten.
    if (text.ok()) {
      revoked_ = ParseRevoked(*text);
      size_ = st.st_size;
      mtime_ = st.st_mtim;
    }
  }
  return revoked_.contains(identity);
}

absl::Status Revoke(const std::string& dir, const std::string& identity) {
  const std::string path = dir + "/" + kRevokedFile;
  absl::StatusOr<std::string> text = ReadWholeFile(path);
  std::string current = text.ok() ? *text : "";
  if (ParseRevoked(current).contains(identity)) return absl::OkStatus();
  if (!current.empty() && current.back() != '\n') current += '\n';
  return WriteFileAtomically(path, current + identity + "\n", 0644);
}

}  // namespace tandem::security
