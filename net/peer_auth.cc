#include "net/peer_auth.h"

#include <cstdio>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "net/link_security.h"
#include "security/pki.h"

namespace tandem {
namespace {

std::mutex& RevocationMutex() {
  static std::mutex mutex;
  return mutex;
}
std::function<bool(const std::string&)>& Revocation() {
  static std::function<bool(const std::string&)> check;
  return check;
}

unsigned RoleOf(const std::string& identity) {
  if (identity == security::kCoordinatorIdentity) return kRoleCoordinator;
  if (identity.rfind(security::kNodeIdentityPrefix, 0) == 0) return kRoleNode;
  if (identity.rfind(security::kClientIdentityPrefix, 0) == 0) return kRoleClient;
  return 0;
}

grpc::Status Refuse(const grpc::ServerContextBase& context, const char* rpc, grpc::StatusCode code,
                    const std::string& reason) {
  const std::string self = LocalIdentity();
  std::fprintf(stderr, "tandem %s: refused %s from %s: %s\n",
               self == security::kCoordinatorIdentity ? "coordinator" : ("node " + self).c_str(),
               rpc, context.peer().c_str(), reason.c_str());
  return grpc::Status(code, absl::StrCat(rpc, " refused: ", reason));
}

}  // namespace

std::string PeerIdentity(const grpc::ServerContextBase& context) {
  std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  if (!auth || !auth->IsPeerAuthenticated()) return "";
  for (const grpc::string_ref& v : auth->FindPropertyValues("x509_common_name")) {
    return std::string(v.data(), v.size());
  }
  return "";
}

grpc::Status AuthorizePeer(const grpc::ServerContextBase& context, const char* rpc, unsigned roles,
                           const std::string& identity) {
  if (!LinksSecure()) return grpc::Status::OK;
  const std::string peer = PeerIdentity(context);
  if (peer.empty()) {
    return Refuse(context, rpc, grpc::StatusCode::UNAUTHENTICATED,
                  "no cluster certificate (join with a token first)");
  }
  if (IsRevokedPeer(peer)) {
    return Refuse(context, rpc, grpc::StatusCode::PERMISSION_DENIED,
                  absl::StrCat(peer, " is revoked"));
  }
  if ((RoleOf(peer) & roles) == 0) {
    return Refuse(context, rpc, grpc::StatusCode::PERMISSION_DENIED,
                  absl::StrCat(peer, " may not call it"));
  }
  if (!identity.empty() && peer != identity) {
    return Refuse(context, rpc, grpc::StatusCode::PERMISSION_DENIED,
                  absl::StrCat(peer, " is not ", identity));
  }
  return grpc::Status::OK;
}

bool IsRevokedPeer(const std::string& identity) {
  std::lock_guard<std::mutex> lock(RevocationMutex());
  return Revocation() && Revocation()(identity);
}

void SetRevocationCheck(std::function<bool(const std::string&)> is_revoked) {
  std::lock_guard<std::mutex> lock(RevocationMutex());
  Revocation() = std::move(is_revoked);
}

}  // namespace tandem
