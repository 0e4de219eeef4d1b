// Who may call what: every handler of the Node and Coordinator services checks its caller
// here before it does anything. The caller is named by its verified certificate (net/
// link_security.h); a call without one is UNAUTHENTICATED, one from the wrong role or a
// revoked identity PERMISSION_DENIED, and the log names the peer and the reason (never a
// secret). On plaintext links (no credentials installed) every call passes.
#pragma once

#include <grpcpp/grpcpp.h>

#include <functional>
#include <string>

namespace tandem {

enum PeerRole : unsigned {
  kRoleCoordinator = 1,
  kRoleNode = 2,
  kRoleClient = 4,
  kRoleAnyMember = kRoleCoordinator | kRoleNode | kRoleClient,
};

// The identity of the caller's verified certificate; empty without one.
std::string PeerIdentity(const grpc::ServerContextBase& context);
// OK when the caller holds a certificate of one of `roles` and (when `identity` is not
// empty) names exactly that identity. `rpc` and the refusal go to the log.
grpc::Status AuthorizePeer(const grpc::ServerContextBase& context, const char* rpc, unsigned roles,
                           const std::string& identity = "");
// Consulted on every authorization when set: identities it names are refused. (The
// coordinator reads its state directory's list; a node, the list its coordinator pushes.)
void SetRevocationCheck(std::function<bool(const std::string&)> is_revoked);
// Whether the installed check names `identity` (false without one): for streams
// authorized before a revocation, checked again on each message.
bool IsRevokedPeer(const std::string& identity);

}  // namespace tandem
