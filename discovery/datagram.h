// The discovery datagrams: a node's probe and a coordinator's announcement, as sent by
// UDP multicast on a LAN (discovery/announcer.h, discovery/finder.h).
//
// Every field has a fixed place and size except the cluster name; every integer is
// big-endian; a datagram is exactly as long as its fields (no trailing bytes):
//
//   offset  size  field
//   0       4     magic "TNDD"
//   4       1     version, 1
//   5       1     kind: 1 probe, 2 announcement
//   6       2     reserved, 0
//   8       8     nonce: a probe's random number; an announcement answering a probe
//                 carries that probe's nonce, an unsolicited one 0
//   16      1     cluster name length L, 1..64
//   17      L     cluster name: ASCII letters, digits, '.', '_' or '-'
//   -- an announcement goes on --
//   17+L    2     the coordinator's gRPC port, 1..65535 (its host is the datagram's source)
//   19+L    8     boot id: random per coordinator run, never 0
//   27+L    32    model tag: SHA-256 of "tandem-discovery-v1:" and the model fingerprint's
//                 hex, so a node can check the model without the fingerprint being sent
//   59+L    1     security: 0 plain-text gRPC, 1 TLS (the join token names the CA)
//   60+L    32    SHA-256 of the cluster's CA certificate: all zero for plain text, not
//                 all zero for TLS (a node with a join token checks it against the token)
//
// Parsing checks every field and answers an error naming the first bad one.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tandem::discovery {

inline constexpr uint8_t kVersion = 1;
inline constexpr size_t kMaxNameBytes = 64;
inline constexpr size_t kHeaderBytes = 17;  // up to the name
inline constexpr size_t kAnnouncementTailBytes = 2 + 8 + 32 + 1 + 32;
// The largest valid datagram; receivers read one byte more to see a longer one.
inline constexpr size_t kMaxDatagramBytes = kHeaderBytes + kMaxNameBytes + kAnnouncementTailBytes;

using Digest = std::array<uint8_t, 32>;

enum class Kind : uint8_t { kProbe = 1, kAnnouncement = 2 };
enum class Security : uint8_t { kPlainText = 0, kTls = 1 };

struct Probe {
  uint64_t nonce = 0;
  std::string cluster_name;
};

struct Announcement {
  uint64_t nonce = 0;  // the probe answered; 0: unsolicited
  std::string cluster_name;
  uint16_t port = 0;
  uint64_t boot_id = 0;
  Digest model_tag{};
  Security security = Security::kPlainText;
  Digest ca_hash{};  // all zero for plain text
};

// A parsed datagram: exactly one of the two, by `kind`.
struct Datagram {
  Kind kind = Kind::kProbe;
  Probe probe;
  Announcement announcement;
};

// Whether `name` is a valid cluster name (1..64 of [A-Za-z0-9._-]).
bool ValidClusterName(absl::string_view name);

// The bytes of a probe or announcement; an invalid field (a bad name, port 0, boot id 0,
// a CA hash that does not fit the security) is an error.
absl::StatusOr<std::vector<uint8_t>> EncodeProbe(const Probe& p);
absl::StatusOr<std::vector<uint8_t>> EncodeAnnouncement(const Announcement& a);

// The model tag of a model with fingerprint `fingerprint_hex` (model/fingerprint.h).
Digest ModelTag(absl::string_view fingerprint_hex);

// Parses one received datagram.
absl::StatusOr<Datagram> ParseDatagram(absl::string_view bytes);

}  // namespace tandem::discovery
