// Fuzz target: what a stranger sends to join (security/join_issuer.h, security/join_token.h):
// a JoinRequest as the coordinator's Join handler receives it, checked against a cluster
// whose token secret is known to the corpus (so certificate requests get parsed, verified
// and signed), and the same bytes as a join token and as a certificate request.
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "security/join_issuer.h"
#include "security/join_token.h"
#include "security/pki.h"
#include "tandem.pb.h"

namespace {

// The corpus's JoinRequests carry this secret.
constexpr char kSecret[] = "5ec5ec5ec5ec5ec5ec5ec5ec5ec5ec5ec5ec5ec5ec5ec5ec5ec5ec5ec5ec5ec5";

struct Cluster {
  std::string dir;
  std::unique_ptr<tandem::security::ClusterCa> ca;
  std::unique_ptr<tandem::security::JoinIssuer> issuer;
};

Cluster* MakeCluster() {
  auto* c = new Cluster();
  char tmpl[] = "/tmp/tandem-join-fuzz-XXXXXX";
  if (!::mkdtemp(tmpl)) std::abort();
  c->dir = tmpl;
  static std::string* dir = new std::string(c->dir);
  std::atexit([] { std::filesystem::remove_all(*dir); });
  auto ca = tandem::security::ClusterCa::OpenOrCreate(c->dir);
  if (!ca.ok()) std::abort();
  c->ca = *std::move(ca);
  auto hash = tandem::security::CertificateSha256Hex(c->ca->ca_cert_pem());
  if (!hash.ok()) std::abort();
  const std::string token = tandem::security::FormatJoinToken({*hash, kSecret});
  if (!tandem::security::WriteFileAtomically(c->dir + "/join-token", token + "\n", 0600).ok()) {
    std::abort();
  }
  c->issuer = std::make_unique<tandem::security::JoinIssuer>(c->dir, *c->ca);
  return c;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Cluster* cluster = MakeCluster();
  const std::string text(reinterpret_cast<const char*>(data), size);
  (void)tandem::security::ParseJoinToken(text);
  tandem::v1::JoinRequest request;
  if (request.ParseFromString(text)) {
    (void)cluster->issuer->Join(request.secret(), request.csr_pem(), request.role());
  }
  (void)cluster->issuer->Join(kSecret, text, "client");
  (void)tandem::security::CertificateCommonName(text);
  return 0;
}
