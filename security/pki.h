// The cluster's certificate authority and the certificates it issues, with OpenSSL:
// ECDSA P-256 keys, X.509 certificates whose common name and DNS name are the holder's
// identity ("tandem-coordinator", "node-<hex>", "client-<hex>").
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace tandem::security {

inline constexpr char kCoordinatorIdentity[] = "tandem-coordinator";
inline constexpr char kNodeIdentityPrefix[] = "node-";
inline constexpr char kClientIdentityPrefix[] = "client-";

// A private key (PEM) and its certificate chain (PEM: the holder's certificate first).
struct KeyAndCertificate {
  std::string key_pem;
  std::string cert_chain_pem;
};

// A fresh ECDSA P-256 private key, PEM.
absl::StatusOr<std::string> NewPrivateKeyPem();
// A certificate signing request for `key_pem` (PEM). The CA ignores its subject.
absl::StatusOr<std::string> NewCsrPem(const std::string& key_pem);
// SHA-256 of a certificate's DER encoding, 64 lowercase hex digits.
absl::StatusOr<std::string> CertificateSha256Hex(const std::string& cert_pem);
// The common name of a certificate (the first in `cert_pem`).
absl::StatusOr<std::string> CertificateCommonName(const std::string& cert_pem);
// 2 * bytes random hex digits from OpenSSL's generator.
absl::StatusOr<std::string> RandomHex(int bytes);

// The CA under a state directory: ca.key, ca.crt, coordinator.key, coordinator.crt
// (keys readable by the owner only). Created on first use, reloaded afterwards.
class ClusterCa {
 public:
  static absl::StatusOr<std::unique_ptr<ClusterCa>> OpenOrCreate(const std::string& dir);

  const std::string& ca_cert_pem() const { return ca_cert_pem_; }
  // The coordinator's key and chain (its certificate, then the CA's).
  const KeyAndCertificate& coordinator() const { return coordinator_; }
  // Signs the CSR's public key for `identity` (after checking the CSR's own signature).
  // Returns the chain: the new certificate, then the CA's.
  absl::StatusOr<std::string> Issue(const std::string& csr_pem, const std::string& identity) const;

 private:
  std::string ca_key_pem_;
  std::string ca_cert_pem_;
  KeyAndCertificate coordinator_;
};

// Writes `text` to `path` atomically (a temporary file, then rename) with `mode`.
absl::Status WriteFileAtomically(const std::string& path, const std::string& text, int mode);
absl::StatusOr<std::string> ReadWholeFile(const std::string& path);

}  // namespace tandem::security
