#include "discovery/datagram.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "model/sha256.h"

namespace tandem::discovery {
namespace {

constexpr char kMagic[4] = {'T', 'N', 'D', 'D'};

bool AllZero(const Digest& d) {
  return std::all_of(d.begin(), d.end(), [](uint8_t b) { return b == 0; });
}

void PutU16(std::vector<uint8_t>& out, uint16_t v) {
  out.push_back(static_cast<uint8_t>(v >> 8));
  out.push_back(static_cast<uint8_t>(v));
}
void PutU64(std::vector<uint8_t>& out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(v >> shift));
}

absl::Status PutHeader(std::vector<uint8_t>& out, Kind kind, uint64_t nonce,
                       const std::string& name) {
  if (!ValidClusterName(name)) {
    return absl::InvalidArgumentError(absl::StrCat("a cluster name is 1 to ", kMaxNameBytes,
                                                   " letters, digits, '.', '_' or '-'; got '", name,
                                                   "'"));
  }
  out.insert(out.end(), kMagic, kMagic + 4);
  out.push_back(kVersion);
  out.push_back(static_cast<uint8_t>(kind));
  PutU16(out, 0);
  PutU64(out, nonce);
  out.push_back(static_cast<uint8_t>(name.size()));
  out.insert(out.end(), name.begin(), name.end());
  return absl::OkStatus();
}

// Reads fields front to back; each read checks that the bytes are there.
class Reader {
 public:
  explicit Reader(absl::string_view bytes) : bytes_(bytes) {}
  size_t left() const { return bytes_.size() - pos_; }
  bool Bytes(size_t n, absl::string_view* out) {
    if (left() < n) return false;
    *out = bytes_.substr(pos_, n);
    pos_ += n;
    return true;
  }
  bool U8(uint8_t* v) {
    absl::string_view b;
    if (!Bytes(1, &b)) return false;
    *v = static_cast<uint8_t>(b[0]);
    return true;
  }
  bool U16(uint16_t* v) {
    absl::string_view b;
    if (!Bytes(2, &b)) return false;
    *v = static_cast<uint16_t>(static_cast<uint8_t>(b[0]) << 8 | static_cast<uint8_t>(b[1]));
    return true;
  }
  bool U64(uint64_t* v) {
    absl::string_view b;
    if (!Bytes(8, &b)) return false;
    *v = 0;
    for (char c : b) *v = *v << 8 | static_cast<uint8_t>(c);
    return true;
  }
  bool DigestField(Digest* d) {
    absl::string_view b;
    if (!Bytes(d->size(), &b)) return false;
    std::copy(b.begin(), b.end(), d->begin());
    return true;
  }

 private:
  absl::string_view bytes_;
  size_t pos_ = 0;
};

absl::Status Bad(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("bad discovery datagram: ", what));
}

}  // namespace

bool ValidClusterName(absl::string_view name) {
  if (name.empty() || name.size() > kMaxNameBytes) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

Digest ModelTag(absl::string_view fingerprint_hex) {
  Sha256 h;
  h.Update("tandem-discovery-v1:");
  h.Update(fingerprint_hex);
  return h.Finish();
}

absl::StatusOr<std::vector<uint8_t>> EncodeProbe(const Probe& p) {
  std::vector<uint8_t> out;
  if (absl::Status s = PutHeader(out, Kind::kProbe, p.nonce, p.cluster_name); !s.ok()) return s;
  return out;
}

absl::StatusOr<std::vector<uint8_t>> EncodeAnnouncement(const Announcement& a) {
  if (a.port == 0) return absl::InvalidArgumentError("an announcement needs a port");
  if (a.boot_id == 0) return absl::InvalidArgumentError("an announcement needs a boot id");
  if (a.security == Security::kPlainText && !AllZero(a.ca_hash)) {
    return absl::InvalidArgumentError("a plain-text cluster has no CA hash");
  }
  if (a.security == Security::kTls && AllZero(a.ca_hash)) {
    return absl::InvalidArgumentError("a TLS cluster announces its CA hash");
  }
  if (a.security != Security::kPlainText && a.security != Security::kTls) {
    return absl::InvalidArgumentError("unknown security");
  }
  std::vector<uint8_t> out;
  if (absl::Status s = PutHeader(out, Kind::kAnnouncement, a.nonce, a.cluster_name); !s.ok()) {
    return s;
  }
  PutU16(out, a.port);
  PutU64(out, a.boot_id);
  out.insert(out.end(), a.model_tag.begin(), a.model_tag.end());
  out.push_back(static_cast<uint8_t>(a.security));
  out.insert(out.end(), a.ca_hash.begin(), a.ca_hash.end());
  return out;
}

absl::StatusOr<Datagram> ParseDatagram(absl::string_view bytes) {
  if (bytes.size() > kMaxDatagramBytes) {
    return Bad(absl::StrCat(bytes.size(), " bytes, more than the ", kMaxDatagramBytes,
                            " the largest may have"));
  }
  Reader r(bytes);
  absl::string_view magic;
  if (!r.Bytes(4, &magic) || magic != absl::string_view(kMagic, 4)) return Bad("no magic");
  uint8_t version, kind;
  uint16_t reserved;
  Datagram d;
  uint64_t nonce;
  if (!r.U8(&version)) return Bad("truncated before the version");
  if (version != kVersion) {
    return Bad(absl::StrCat("version ", version, ", this build reads ", kVersion));
  }
  if (!r.U8(&kind)) return Bad("truncated before the kind");
  if (kind != static_cast<uint8_t>(Kind::kProbe) &&
      kind != static_cast<uint8_t>(Kind::kAnnouncement)) {
    return Bad(absl::StrCat("unknown kind ", kind));
  }
  d.kind = static_cast<Kind>(kind);
  if (!r.U16(&reserved)) return Bad("truncated in the header");
  if (reserved != 0) return Bad("reserved bits set");
  if (!r.U64(&nonce)) return Bad("truncated before the nonce's end");
  uint8_t name_len;
  absl::string_view name;
  if (!r.U8(&name_len)) return Bad("truncated before the cluster name");
  if (name_len == 0 || name_len > kMaxNameBytes) {
    return Bad(absl::StrCat("cluster name length ", name_len, " (1 to ", kMaxNameBytes, ")"));
  }
  if (!r.Bytes(name_len, &name)) return Bad("truncated in the cluster name");
  if (!ValidClusterName(name)) return Bad("the cluster name has a character not allowed");
  if (d.kind == Kind::kProbe) {
    if (r.left() != 0) return Bad(absl::StrCat(r.left(), " bytes after a probe"));
    d.probe.nonce = nonce;
    d.probe.cluster_name = std::string(name);
    return d;
  }
  Announcement& a = d.announcement;
  a.nonce = nonce;
  a.cluster_name = std::string(name);
  uint8_t security;
  if (!r.U16(&a.port) || !r.U64(&a.boot_id) || !r.DigestField(&a.model_tag) || !r.U8(&security) ||
      !r.DigestField(&a.ca_hash)) {
    return Bad("truncated announcement");
  }
  if (r.left() != 0) return Bad(absl::StrCat(r.left(), " bytes after an announcement"));
  if (a.port == 0) return Bad("port 0");
  if (a.boot_id == 0) return Bad("boot id 0");
  if (security == static_cast<uint8_t>(Security::kPlainText)) {
    if (!AllZero(a.ca_hash)) return Bad("a CA hash on a plain-text cluster");
  } else if (security == static_cast<uint8_t>(Security::kTls)) {
    if (AllZero(a.ca_hash)) return Bad("a TLS cluster without its CA hash");
  } else {
    return Bad(absl::StrCat("unknown security ", security));
  }
  a.security = static_cast<Security>(security);
  return d;
}

}  // namespace tandem::discovery
