// Join tokens: `tandem-join-v1.<SHA-256 of the CA certificate>.<secret>`. The hash lets a
// joining machine check the coordinator's certificate before it trusts it; the secret,
// sent only over that checked link, proves the machine was given the token.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tandem::security {

struct JoinToken {
  std::string ca_sha256;  // 64 lowercase hex digits
  std::string secret;     // 64 lowercase hex digits
};

inline constexpr char kJoinTokenFile[] = "join-token";

absl::StatusOr<JoinToken> ParseJoinToken(absl::string_view text);
std::string FormatJoinToken(const JoinToken& token);
// The token from --token or, when that is empty, the first line of --token-file.
absl::StatusOr<JoinToken> JoinTokenFromFlags(const std::string& token,
                                             const std::string& token_file);
// Constant-time comparison of two secrets.
bool SecretsEqual(absl::string_view a, absl::string_view b);

// The cluster's token in DIR/join-token: read back, or made (with a fresh secret) when
// missing or when `rotate` asks for a new one. A token whose hash is not the CA's (the
// CA was replaced) is made anew.
absl::StatusOr<JoinToken> LoadOrCreateJoinToken(const std::string& dir,
                                                const std::string& ca_sha256, bool rotate);

}  // namespace tandem::security
