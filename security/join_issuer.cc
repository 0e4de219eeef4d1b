#include "security/join_issuer.h"

#include "absl/strings/str_cat.h"
#include "security/join_token.h"

namespace tandem::security {

absl::StatusOr<Issued> JoinIssuer::Join(const std::string& secret, const std::string& csr_pem,
                                        const std::string& role) const {
  absl::StatusOr<JoinToken> token = JoinTokenFromFlags("", absl::StrCat(dir_, "/", kJoinTokenFile));
  if (!token.ok()) return absl::UnavailableError("the cluster has no valid join token");
  if (!SecretsEqual(secret, token->secret)) {
    return absl::PermissionDeniedError("wrong join token (rotated, or from another cluster)");
  }
  std::string prefix;
  if (role == "node") {
    prefix = kNodeIdentityPrefix;
  } else if (role == "client") {
    prefix = kClientIdentityPrefix;
  } else {
    return absl::InvalidArgumentError("the role must be node or client");
  }
  absl::StatusOr<std::string> suffix = RandomHex(8);
  if (!suffix.ok()) return suffix.status();
  Issued out;
  out.identity = prefix + *suffix;
  absl::StatusOr<std::string> chain = ca_.Issue(csr_pem, out.identity);
  if (!chain.ok()) return chain.status();
  out.cert_chain_pem = *std::move(chain);
  return out;
}

}  // namespace tandem::security
