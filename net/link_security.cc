#include "net/link_security.h"

#include <mutex>

#include "security/pki.h"

namespace tandem {
namespace {

std::mutex& CredentialsMutex() {
  static std::mutex mutex;
  return mutex;
}
LinkCredentials& Installed() {
  static LinkCredentials credentials;
  return credentials;
}

LinkCredentials Current() {
  std::lock_guard<std::mutex> lock(CredentialsMutex());
  return Installed();
}

grpc::ChannelArguments LinkArguments() {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxMessageBytes);
  args.SetMaxSendMessageSize(kMaxMessageBytes);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
  // Separate channels for separate links: do not share a subchannel with other clients.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return args;
}

}  // namespace

void InstallLinkCredentials(LinkCredentials credentials) {
  std::lock_guard<std::mutex> lock(CredentialsMutex());
  Installed() = std::move(credentials);
}

bool LinksSecure() { return !LocalIdentity().empty(); }

std::string LocalIdentity() {
  std::lock_guard<std::mutex> lock(CredentialsMutex());
  return Installed().identity;
}

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& address,
                                           const std::string& peer_identity) {
  const LinkCredentials c = Current();
  grpc::ChannelArguments args = LinkArguments();
  if (c.identity.empty()) {
    return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
  }
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = c.ca_cert_pem;
  ssl.pem_private_key = c.key_pem;
  ssl.pem_cert_chain = c.cert_chain_pem;
  // The name checked against the peer's certificate is its identity, not its address: the
  // CA names members, and addresses change.
  args.SetSslTargetNameOverride(peer_identity.empty() ? std::string(security::kCoordinatorIdentity)
                                                      : peer_identity);
  return grpc::CreateCustomChannel(address, grpc::SslCredentials(ssl), args);
}

std::shared_ptr<grpc::Channel> MakeJoinChannel(const std::string& address,
                                               const std::string& ca_cert_pem) {
  grpc::ChannelArguments args = LinkArguments();
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = ca_cert_pem;
  args.SetSslTargetNameOverride(security::kCoordinatorIdentity);
  return grpc::CreateCustomChannel(address, grpc::SslCredentials(ssl), args);
}

std::shared_ptr<grpc::ServerCredentials> MakeServerCredentials(bool require_client_certificate) {
  const LinkCredentials c = Current();
  if (c.identity.empty()) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions ssl(
      require_client_certificate ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                                 : GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
  ssl.pem_root_certs = c.ca_cert_pem;
  ssl.pem_key_cert_pairs.push_back({c.key_pem, c.cert_chain_pem});
  return grpc::SslServerCredentials(ssl);
}

bool IsLoopbackAddress(const std::string& host_port) {
  std::string host = host_port;
  if (!host.empty() && host.front() == '[') {
    host = host.substr(1, host.find(']') - 1);
  } else if (host.find(':') != host.rfind(':')) {
    // A bare IPv6 address without a port.
  } else {
    host = host.substr(0, host.rfind(':'));
  }
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

}  // namespace tandem
