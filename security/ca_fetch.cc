#include "security/ca_fetch.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include <memory>

#include "absl/strings/str_cat.h"
#include "security/pki.h"

namespace tandem::security {

absl::StatusOr<std::string> FetchCaCertificate(const std::string& address,
                                               const std::string& ca_sha256) {
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_client_method()),
                                                        SSL_CTX_free);
  if (!ctx) return absl::InternalError("cannot make a TLS context");
  // The chain is checked below against the token's hash, not against any store.
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  static const unsigned char kAlpn[] = {2, 'h', '2'};
  SSL_CTX_set_alpn_protos(ctx.get(), kAlpn, sizeof(kAlpn));
  std::unique_ptr<BIO, decltype(&BIO_free_all)> bio(BIO_new_ssl_connect(ctx.get()), BIO_free_all);
  if (!bio) return absl::InternalError("cannot make a TLS connection");
  BIO_set_conn_hostname(bio.get(), address.c_str());
  SSL* ssl = nullptr;
  BIO_get_ssl(bio.get(), &ssl);
  SSL_set_tlsext_host_name(ssl, kCoordinatorIdentity);
  if (BIO_do_handshake(bio.get()) <= 0) {
    ERR_clear_error();
    return absl::UnavailableError(absl::StrCat(
        "no TLS handshake with the coordinator at ", address,
        " (is it running, and with --state-dir? a coordinator without one takes no token)"));
  }
  STACK_OF(X509)* chain = SSL_get_peer_cert_chain(ssl);
  for (int i = 0; chain && i < sk_X509_num(chain); ++i) {
    std::unique_ptr<BIO, decltype(&BIO_free_all)> out(BIO_new(BIO_s_mem()), BIO_free_all);
    if (!PEM_write_bio_X509(out.get(), sk_X509_value(chain, i))) continue;
    char* data = nullptr;
    const long n = BIO_get_mem_data(out.get(), &data);
    std::string pem(data, static_cast<size_t>(n));
    absl::StatusOr<std::string> hash = CertificateSha256Hex(pem);
    if (hash.ok() && *hash == ca_sha256) return pem;
  }
  return absl::PermissionDeniedError(absl::StrCat(
      "the coordinator at ", address,
      " does not present the CA the join token names: a different cluster, an old token, or "
      "someone in the middle"));
}

bool SpeaksTls(const std::string& address) {
  // No certificate's hash is empty: a handshake that presents any chain is refused as
  // "not the CA the token names", one that fails is UNAVAILABLE.
  return FetchCaCertificate(address, "").status().code() == absl::StatusCode::kPermissionDenied;
}

}  // namespace tandem::security
