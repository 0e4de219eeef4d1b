#include "security/pki.h"

#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace tandem::security {
namespace {

template <typename T, void (*F)(T*)>
struct Free {
  void operator()(T* p) const { F(p); }
};
using Key = std::unique_ptr<EVP_PKEY, Free<EVP_PKEY, EVP_PKEY_free>>;
using Cert = std::unique_ptr<X509, Free<X509, X509_free>>;
using Request = std::unique_ptr<X509_REQ, Free<X509_REQ, X509_REQ_free>>;
using Bio = std::unique_ptr<BIO, Free<BIO, BIO_free_all>>;
using Bignum = std::unique_ptr<BIGNUM, Free<BIGNUM, BN_free>>;

constexpr long kCaDays = 3650;
constexpr long kLeafDays = 365;
// A CSR is a few hundred bytes; anything much larger is not one.
constexpr size_t kMaxPemBytes = 16 << 10;

absl::Status OpenSslError(absl::string_view what) {
  std::string detail;
  for (unsigned long e = ERR_get_error(); e != 0; e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    if (!detail.empty()) detail += "; ";
    detail += buf;
  }
  return absl::InternalError(
      absl::StrCat(what, detail.empty() ? "" : ": ", detail.empty() ? "" : detail));
}

Bio ReadBio(const std::string& pem) {
  return Bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

std::string BioText(BIO* bio) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  return n > 0 ? std::string(data, static_cast<size_t>(n)) : std::string();
}

absl::StatusOr<Key> ParseKey(const std::string& pem) {
  Bio bio = ReadBio(pem);
  Key key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) return OpenSslError("cannot read a private key");
  return key;
}

absl::StatusOr<Cert> ParseCert(const std::string& pem) {
  if (pem.size() > 4 * kMaxPemBytes) return absl::InvalidArgumentError("certificate too large");
  Bio bio = ReadBio(pem);
  Cert cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) return OpenSslError("cannot read a certificate");
  return cert;
}

absl::StatusOr<std::string> KeyPem(EVP_PKEY* key) {
  Bio bio(BIO_new(BIO_s_mem()));
  if (!PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr)) {
    return OpenSslError("cannot encode a private key");
  }
  return BioText(bio.get());
}

absl::StatusOr<std::string> CertPem(X509* cert) {
  Bio bio(BIO_new(BIO_s_mem()));
  if (!PEM_write_bio_X509(bio.get(), cert)) return OpenSslError("cannot encode a certificate");
  return BioText(bio.get());
}

absl::Status AddExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (!ext) return OpenSslError(absl::StrCat("cannot make extension ", OBJ_nid2sn(nid)));
  const int added = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  if (!added) return OpenSslError("cannot add an extension");
  return absl::OkStatus();
}

// A certificate for `identity` holding `public_key`, signed by `issuer_key` (`issuer` is
// null for the self-signed CA certificate).
absl::StatusOr<std::string> MakeCertificate(EVP_PKEY* public_key, const std::string& identity,
                                            bool is_ca, X509* issuer, EVP_PKEY* issuer_key) {
  Cert cert(X509_new());
  if (!cert || !X509_set_version(cert.get(), 2)) return OpenSslError("cannot make a certificate");
  Bignum serial(BN_new());
  if (!serial || !BN_rand(serial.get(), 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) ||
      !BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get()))) {
    return OpenSslError("cannot draw a serial number");
  }
  // An hour of slack for clocks that differ between machines.
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), (is_ca ? kCaDays : kLeafDays) * 86400L);
  if (!X509_set_pubkey(cert.get(), public_key)) return OpenSslError("cannot set the public key");
  X509_NAME* name = X509_get_subject_name(cert.get());
  if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                  reinterpret_cast<const unsigned char*>(identity.c_str()), -1, -1,
                                  0)) {
    return OpenSslError("cannot set the common name");
  }
  X509* signer = issuer ? issuer : cert.get();
  if (!X509_set_issuer_name(cert.get(), X509_get_subject_name(signer))) {
    return OpenSslError("cannot set the issuer");
  }
  absl::Status s;
  if (is_ca) {
    s = AddExtension(cert.get(), signer, NID_basic_constraints, "critical,CA:TRUE,pathlen:0");
    if (s.ok()) s = AddExtension(cert.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign");
    if (s.ok()) s = AddExtension(cert.get(), signer, NID_subject_key_identifier, "hash");
  } else {
    s = AddExtension(cert.get(), signer, NID_basic_constraints, "critical,CA:FALSE");
    if (s.ok()) s = AddExtension(cert.get(), signer, NID_key_usage, "critical,digitalSignature");
    if (s.ok()) s = AddExtension(cert.get(), signer, NID_ext_key_usage, "serverAuth,clientAuth");
    if (s.ok()) s = AddExtension(cert.get(), signer, NID_subject_alt_name, "DNS:" + identity);
    if (s.ok()) s = AddExtension(cert.get(), signer, NID_authority_key_identifier, "keyid:always");
  }
  if (!s.ok()) return s;
  if (!X509_sign(cert.get(), issuer_key, EVP_sha256())) {
    return OpenSslError("cannot sign a certificate");
  }
  return CertPem(cert.get());
}

}  // namespace

absl::StatusOr<std::string> NewPrivateKeyPem() {
  Key key(EVP_EC_gen("P-256"));
  if (!key) return OpenSslError("cannot generate a key");
  return KeyPem(key.get());
}

absl::StatusOr<std::string> NewCsrPem(const std::string& key_pem) {
  absl::StatusOr<Key> key = ParseKey(key_pem);
  if (!key.ok()) return key.status();
  Request req(X509_REQ_new());
  if (!req || !X509_REQ_set_version(req.get(), 0) || !X509_REQ_set_pubkey(req.get(), key->get()) ||
      !X509_REQ_sign(req.get(), key->get(), EVP_sha256())) {
    return OpenSslError("cannot make a certificate request");
  }
  Bio bio(BIO_new(BIO_s_mem()));
  if (!PEM_write_bio_X509_REQ(bio.get(), req.get())) {
    return OpenSslError("cannot encode a certificate request");
  }
  return BioText(bio.get());
}

absl::StatusOr<std::string> CertificateSha256Hex(const std::string& cert_pem) {
  absl::StatusOr<Cert> cert = ParseCert(cert_pem);
  if (!cert.ok()) return cert.status();
  unsigned char* der = nullptr;
  const int n = i2d_X509(cert->get(), &der);
  if (n <= 0) return OpenSslError("cannot encode a certificate");
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(der, static_cast<size_t>(n), digest);
  OPENSSL_free(der);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), sizeof(digest)));
}

absl::StatusOr<std::string> CertificateCommonName(const std::string& cert_pem) {
  absl::StatusOr<Cert> cert = ParseCert(cert_pem);
  if (!cert.ok()) return cert.status();
  char cn[256] = {0};
  if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert->get()), NID_commonName, cn,
                                sizeof(cn)) <= 0) {
    return absl::InvalidArgumentError("the certificate has no common name");
  }
  return std::string(cn);
}

absl::StatusOr<std::string> RandomHex(int bytes) {
  std::string raw(static_cast<size_t>(bytes), '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), bytes) != 1) {
    return OpenSslError("the random generator failed");
  }
  return absl::BytesToHexString(raw);
}

absl::Status WriteFileAtomically(const std::string& path, const std::string& text, int mode) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, mode);
  if (fd < 0)
    return absl::UnavailableError(absl::StrCat("cannot write ", tmp, ": ", strerror(errno)));
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n <= 0) {
      ::close(fd);
      return absl::UnavailableError(absl::StrCat("cannot write ", tmp, ": ", strerror(errno)));
    }
    done += static_cast<size_t>(n);
  }
  ::fchmod(fd, mode);
  ::fsync(fd);
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::UnavailableError(absl::StrCat("cannot write ", path, ": ", strerror(errno)));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

absl::StatusOr<std::unique_ptr<ClusterCa>> ClusterCa::OpenOrCreate(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("cannot create ", dir, ": ", ec.message()));
  ::chmod(dir.c_str(), 0700);
  auto ca = std::unique_ptr<ClusterCa>(new ClusterCa());
  const std::string ca_key = dir + "/ca.key", ca_crt = dir + "/ca.crt";
  const std::string co_key = dir + "/coordinator.key", co_crt = dir + "/coordinator.crt";
  if (!std::filesystem::exists(ca_key) || !std::filesystem::exists(ca_crt)) {
    absl::StatusOr<std::string> key_pem = NewPrivateKeyPem();
    if (!key_pem.ok()) return key_pem.status();
    absl::StatusOr<Key> key = ParseKey(*key_pem);
    if (!key.ok()) return key.status();
    absl::StatusOr<std::string> cert_pem = MakeCertificate(
        key->get(), "tandem cluster CA " + RandomHex(4).value_or(""), true, nullptr, key->get());
    if (!cert_pem.ok()) return cert_pem.status();
    if (absl::Status s = WriteFileAtomically(ca_key, *key_pem, 0600); !s.ok()) return s;
    if (absl::Status s = WriteFileAtomically(ca_crt, *cert_pem, 0644); !s.ok()) return s;
    // A new CA invalidates any older coordinator certificate.
    std::filesystem::remove(co_crt, ec);
  }
  absl::StatusOr<std::string> key_pem = ReadWholeFile(ca_key);
  if (!key_pem.ok()) return key_pem.status();
  absl::StatusOr<std::string> cert_pem = ReadWholeFile(ca_crt);
  if (!cert_pem.ok()) return cert_pem.status();
  ca->ca_key_pem_ = *key_pem;
  ca->ca_cert_pem_ = *cert_pem;
  if (!std::filesystem::exists(co_key) || !std::filesystem::exists(co_crt)) {
    absl::StatusOr<std::string> leaf_key = NewPrivateKeyPem();
    if (!leaf_key.ok()) return leaf_key.status();
    absl::StatusOr<std::string> csr = NewCsrPem(*leaf_key);
    if (!csr.ok()) return csr.status();
    absl::StatusOr<std::string> chain = ca->Issue(*csr, kCoordinatorIdentity);
    if (!chain.ok()) return chain.status();
    if (absl::Status s = WriteFileAtomically(co_key, *leaf_key, 0600); !s.ok()) return s;
    if (absl::Status s = WriteFileAtomically(co_crt, *chain, 0644); !s.ok()) return s;
  }
  absl::StatusOr<std::string> co_key_pem = ReadWholeFile(co_key);
  if (!co_key_pem.ok()) return co_key_pem.status();
  absl::StatusOr<std::string> co_chain = ReadWholeFile(co_crt);
  if (!co_chain.ok()) return co_chain.status();
  // Reloaded files must still hold what they held: a key that parses, certificates that do.
  if (absl::StatusOr<Key> k = ParseKey(ca->ca_key_pem_); !k.ok()) return k.status();
  if (absl::StatusOr<Cert> c = ParseCert(ca->ca_cert_pem_); !c.ok()) return c.status();
  if (absl::StatusOr<Key> k = ParseKey(*co_key_pem); !k.ok()) return k.status();
  ca->coordinator_ = {*co_key_pem, *co_chain};
  return ca;
}

absl::StatusOr<std::string> ClusterCa::Issue(const std::string& csr_pem,
                                             const std::string& identity) const {
  if (csr_pem.size() > kMaxPemBytes) {
    return absl::InvalidArgumentError(absl::StrCat("a certificate request of ", csr_pem.size(),
                                                   " bytes exceeds the limit of ", kMaxPemBytes));
  }
  Bio bio = ReadBio(csr_pem);
  Request req(PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  if (!req) return absl::InvalidArgumentError("the certificate request does not parse");
  Key public_key(X509_REQ_get_pubkey(req.get()));
  if (!public_key || X509_REQ_verify(req.get(), public_key.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError("the certificate request's signature does not verify");
  }
  if (EVP_PKEY_get_base_id(public_key.get()) != EVP_PKEY_EC ||
      EVP_PKEY_get_bits(public_key.get()) < 256) {
    return absl::InvalidArgumentError("the certificate request must hold an EC P-256 key");
  }
  absl::StatusOr<Key> ca_key = ParseKey(ca_key_pem_);
  if (!ca_key.ok()) return ca_key.status();
  absl::StatusOr<Cert> ca_cert = ParseCert(ca_cert_pem_);
  if (!ca_cert.ok()) return ca_cert.status();
  absl::StatusOr<std::string> cert =
      MakeCertificate(public_key.get(), identity, false, ca_cert->get(), ca_key->get());
  if (!cert.ok()) return cert.status();
  return *cert + ca_cert_pem_;
}

}  // namespace tandem::security
