// Joining a cluster from a node or a client command: fetch the coordinator's CA and check
// it against the join token's hash (security/ca_fetch.h), make a key and a certificate
// request, prove the token's secret over TLS checked against that CA, and install the
// certificate the coordinator issues as this process's link credentials.
#pragma once

#include <chrono>
#include <string>

#include "absl/status/status.h"
#include "security/join_token.h"

namespace tandem {

// `role` is "node" or "client". Retries while the coordinator is unreachable, up to
// `patience`; a refusal (wrong token, wrong CA) ends at once.
absl::Status JoinCluster(const std::string& coordinator_address, const security::JoinToken& token,
                         const std::string& role,
                         std::chrono::milliseconds patience = std::chrono::seconds(30));

// For client commands: joins when --token or --token-file is given; otherwise nothing
// (plaintext, for a loopback cluster without a state directory).
absl::Status JoinClusterFromFlags(const std::string& coordinator_address, const std::string& token,
                                  const std::string& token_file);

}  // namespace tandem
