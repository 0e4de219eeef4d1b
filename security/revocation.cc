#include "security/revocation.h"

#include <sys/stat.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
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

// A name a certificate of a node or client can carry (the coordinator's cannot be revoked).
bool Revocable(const std::string& identity) {
  return (absl::StartsWith(identity, kNodeIdentityPrefix) ||
          absl::StartsWith(identity, kClientIdentityPrefix)) &&
         identity.size() <= PushedRevocations::kMaxIdentityBytes;
}

}  // namespace

RevocationList::RevocationList(std::string dir) : path_(dir + "/" + kRevokedFile) {}

void RevocationList::RefreshLocked() {
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
}

bool RevocationList::IsRevoked(const std::string& identity) {
  std::lock_guard<std::mutex> lock(mutex_);
  RefreshLocked();
  return revoked_.contains(identity);
}

std::vector<std::string> RevocationList::Identities() {
  std::lock_guard<std::mutex> lock(mutex_);
  RefreshLocked();
  std::vector<std::string> out;
  for (const std::string& identity : revoked_) {
    if (Revocable(identity)) out.push_back(identity);
  }
  std::sort(out.begin(), out.end());
  return out;
}

absl::StatusOr<std::vector<std::string>> PushedRevocations::Replace(
    const std::vector<std::string>& identities) {
  if (identities.size() > kMaxIdentities) {
    return absl::InvalidArgumentError(absl::StrCat("a revocation list of ", identities.size(),
                                                   " identities (at most ", kMaxIdentities, ")"));
  }
  absl::flat_hash_set<std::string> next;
  for (const std::string& identity : identities) {
    if (!Revocable(identity)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "a revocation list naming '", absl::CHexEscape(identity.substr(0, kMaxIdentityBytes)),
          "', which is no node's or client's certificate name"));
    }
    next.insert(identity);
  }
  std::vector<std::string> added;
  std::lock_guard<std::mutex> lock(mutex_);
  for (const std::string& identity : next) {
    if (!revoked_.contains(identity)) added.push_back(identity);
  }
  std::sort(added.begin(), added.end());
  revoked_ = std::move(next);
  return added;
}

bool PushedRevocations::IsRevoked(const std::string& identity) const {
  std::lock_guard<std::mutex> lock(mutex_);
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
