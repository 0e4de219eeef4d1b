// Revoked identities: DIR/revoked, one certificate identity (node-<hex>, client-<hex>) a
// line. The coordinator consults it on every call, re-reading the file when it changes, so
// `tandem cluster revoke` takes effect on a running cluster; it pushes the list to its
// nodes in every Register and Heartbeat reply, so a node refuses a revoked peer too
// (PushedRevocations).
#pragma once

#include <sys/types.h>

#include <mutex>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace tandem::security {

inline constexpr char kRevokedFile[] = "revoked";

class RevocationList {
 public:
  explicit RevocationList(std::string dir);
  bool IsRevoked(const std::string& identity);
  // Every revoked node or client identity, sorted (what the coordinator pushes to nodes).
  std::vector<std::string> Identities();

 private:
  void RefreshLocked();
  const std::string path_;
  std::mutex mutex_;
  struct timespec mtime_ = {};
  off_t size_ = -1;
  absl::flat_hash_set<std::string> revoked_;
};

// A node's copy of its coordinator's list, replaced by each reply that carries it.
class PushedRevocations {
 public:
  // At most this many identities, each a certificate name (node-…, client-…) of at most
  // kMaxIdentityBytes: a list past either is refused and the one in force kept.
  static constexpr size_t kMaxIdentities = 100000;
  static constexpr size_t kMaxIdentityBytes = 128;
  // Replaces the list; answers the identities it adds (for the log).
  absl::StatusOr<std::vector<std::string>> Replace(const std::vector<std::string>& identities);
  bool IsRevoked(const std::string& identity) const;

 private:
  mutable std::mutex mutex_;
  absl::flat_hash_set<std::string> revoked_;
};

// Adds `identity` to DIR/revoked (once).
absl::Status Revoke(const std::string& dir, const std::string& identity);

}  // namespace tandem::security
