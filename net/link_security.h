// Every gRPC link's credentials in one place. A process that joined a cluster (or the
// coordinator that runs it) installs its key, certificate and the cluster's CA once at
// start; from then on every channel it opens and every server it runs is mutual TLS under
// that CA, and each channel checks that the peer's certificate names the identity it
// expects. Without installed credentials links are plaintext, which the commands allow
// only on loopback (or with --insecure).
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

namespace tandem {

// Nothing a link carries is larger than a frame (a few MiB).
inline constexpr int kMaxMessageBytes = 8 << 20;

struct LinkCredentials {
  std::string identity;        // this process's certificate name
  std::string ca_cert_pem;     // the cluster's CA
  std::string cert_chain_pem;  // this process's certificate, then the CA's
  std::string key_pem;
};

// Process-wide, before any link opens. An empty identity clears them (plaintext).
void InstallLinkCredentials(LinkCredentials credentials);
bool LinksSecure();
// This process's identity; empty on plaintext links.
std::string LocalIdentity();

// A channel to `address` whose peer must present a certificate for `peer_identity`
// (ignored on plaintext links). Frames up to kMaxMessageBytes, keepalives, a subchannel
// of its own.
std::shared_ptr<grpc::Channel> MakeChannel(const std::string& address,
                                           const std::string& peer_identity);
// TLS that checks the server against `ca_cert_pem` but presents no certificate: the Join
// call, before this process has one.
std::shared_ptr<grpc::Channel> MakeJoinChannel(const std::string& address,
                                               const std::string& ca_cert_pem);
// A server's credentials: mutual TLS when installed. With `require_client_certificate`
// false, a client may come without one (the coordinator's Join); each handler's
// authorization (net/peer_auth.h) then decides.
std::shared_ptr<grpc::ServerCredentials> MakeServerCredentials(bool require_client_certificate);

// True for 127.0.0.0/8, ::1 and localhost: where plaintext links may listen.
bool IsLoopbackAddress(const std::string& host_port);

}  // namespace tandem
