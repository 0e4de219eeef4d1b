// The coordinator's side of joining: checks a joiner's secret against the cluster's current
// token (re-read from DIR/join-token on each call, so a rotated token takes effect at once)
// and issues it a certificate under a fresh identity.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "security/pki.h"

namespace tandem::security {

struct Issued {
  std::string identity;
  std::string cert_chain_pem;
};

class JoinIssuer {
 public:
  JoinIssuer(std::string state_dir, const ClusterCa& ca) : dir_(std::move(state_dir)), ca_(ca) {}
  // `role` is "node" or "client". A wrong secret is PERMISSION_DENIED; the message never
  // repeats what was sent.
  absl::StatusOr<Issued> Join(const std::string& secret, const std::string& csr_pem,
                              const std::string& role) const;

 private:
  const std::string dir_;
  const ClusterCa& ca_;
};

}  // namespace tandem::security
