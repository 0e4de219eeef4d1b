// The coordinator's side of discovery: announces the cluster on the LAN by UDP multicast
// and answers nodes' probes (`tandem coordinator --announce`), on a thread of its own.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "discovery/datagram.h"

namespace tandem::discovery {

inline constexpr char kDefaultGroup[] = "239.255.77.77";
inline constexpr uint16_t kDefaultPort = 7077;

struct Endpoint {
  std::string group = kDefaultGroup;  // an IPv4 multicast group
  uint16_t port = kDefaultPort;
};
// Parses "GROUP:PORT" (an IPv4 multicast address and a port).
absl::StatusOr<Endpoint> ParseEndpoint(const std::string& text);

struct AnnouncerOptions {
  Endpoint endpoint;
  // The IPv4 address of the interface to announce on; empty: the one the group routes to.
  std::string interface_address;
  std::chrono::milliseconds interval{2000};  // unsolicited announcements
  int max_replies_per_second = 20;           // answers to probes, so it amplifies nothing
};

class Announcer {
 public:
  // Binds, joins the group and starts announcing `what` (its nonce is set per datagram).
  static absl::StatusOr<std::unique_ptr<Announcer>> Start(const Announcement& what,
                                                          const AnnouncerOptions& options);
  ~Announcer();  // stops
  Announcer(const Announcer&) = delete;
  Announcer& operator=(const Announcer&) = delete;

  uint64_t probes_answered() const;

 private:
  struct Impl;
  explicit Announcer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tandem::discovery
