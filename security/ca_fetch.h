// The first step of joining: a TLS handshake with the coordinator that reads the
// certificate chain it presents and keeps the CA certificate whose SHA-256 the join token
// names. Nothing is trusted before that match; the gRPC links then verify against it.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace tandem::security {

absl::StatusOr<std::string> FetchCaCertificate(const std::string& address,
                                               const std::string& ca_sha256);

// Whether the server at `address` completes a TLS handshake and presents a certificate:
// a coordinator with a state directory (which then needs a join token from clients).
bool SpeaksTls(const std::string& address);

}  // namespace tandem::security
