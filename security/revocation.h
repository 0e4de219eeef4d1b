// Revoked identities: DIR/revoked, one certificate identity (node-<hex>, client-<hex>) a
// line. The coordinator consults it on every call, re-reading the file when it changes, so
// `tandem cluster revoke` takes effect on a running cluster.
#pragma once

#include <sys/types.h>

#include <mutex>
#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"

namespace tandem::security {

inline constexpr char kRevokedFile[] = "revoked";

class RevocationList {
 public:
  explicit RevocationList(std::string dir);
  bool IsRevoked(const std::string& identity);

 private:
  const std::string path_;
  std::mutex mutex_;
  struct timespec mtime_ = {};
  off_t size_ = -1;
  absl::flat_hash_set<std::string> revoked_;
};

// Adds `identity` to DIR/revoked (once).
absl::Status Revoke(const std::string& dir, const std::string& identity);

}  // namespace tandem::security
