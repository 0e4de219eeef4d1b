#include "net/cluster_join.h"

#include <thread>

#include "absl/strings/str_cat.h"
#include "net/frames.h"
#include "net/link_security.h"
#include "security/ca_fetch.h"
#include "security/pki.h"
#include "tandem.grpc.pb.h"

namespace tandem {

absl::Status JoinCluster(const std::string& address, const security::JoinToken& token,
                         const std::string& role, std::chrono::milliseconds patience) {
  const auto deadline = std::chrono::steady_clock::now() + patience;
  absl::StatusOr<std::string> ca;
  for (;;) {
    ca = security::FetchCaCertificate(address, token.ca_sha256);
    if (ca.ok() || ca.status().code() != absl::StatusCode::kUnavailable ||
        std::chrono::steady_clock::now() > deadline) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  if (!ca.ok()) return ca.status();
  absl::StatusOr<std::string> key = security::NewPrivateKeyPem();
  if (!key.ok()) return key.status();
  absl::StatusOr<std::string> csr = security::NewCsrPem(*key);
  if (!csr.ok()) return csr.status();
  v1::JoinRequest request;
  request.set_protocol_version(kProtocolVersion);
  request.set_secret(token.secret);
  request.set_csr_pem(*csr);
  request.set_role(role);
  auto stub = v1::Coordinator::NewStub(MakeJoinChannel(address, *ca));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::JoinResponse response;
  grpc::Status s = stub->Join(&ctx, request, &response);
  if (!s.ok()) {
    return absl::Status(
        static_cast<absl::StatusCode>(s.error_code()),
        absl::StrCat("joining the cluster at ", address, " failed: ", s.error_message()));
  }
  // The certificate must be what was asked for: our identity, for our key, under the CA.
  absl::StatusOr<std::string> name = security::CertificateCommonName(response.cert_chain_pem());
  if (!name.ok() || *name != response.identity()) {
    return absl::DataLossError("the coordinator sent a certificate for another identity");
  }
  InstallLinkCredentials({response.identity(), *ca, response.cert_chain_pem(), *key});
  return absl::OkStatus();
}

absl::Status JoinClusterFromFlags(const std::string& address, const std::string& token,
                                  const std::string& token_file) {
  if (token.empty() && token_file.empty()) return absl::OkStatus();
  absl::StatusOr<security::JoinToken> parsed = security::JoinTokenFromFlags(token, token_file);
  if (!parsed.ok()) return parsed.status();
  return JoinCluster(address, *parsed, "client", std::chrono::seconds(5));
}

}  // namespace tandem
