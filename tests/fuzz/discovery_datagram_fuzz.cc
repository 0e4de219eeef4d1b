// Fuzz target: the discovery datagram parser (discovery/datagram.h) on arbitrary bytes, as
// any host on the LAN can send them. Nothing may crash; what parses must encode back to the
// same bytes (the format has one encoding).
#include <cstdint>
#include <cstdlib>
#include <string>

#include "discovery/datagram.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  auto d = tandem::discovery::ParseDatagram(bytes);
  if (!d.ok()) return 0;
  auto again = d->kind == tandem::discovery::Kind::kProbe
                   ? tandem::discovery::EncodeProbe(d->probe)
                   : tandem::discovery::EncodeAnnouncement(d->announcement);
  if (!again.ok() || std::string(again->begin(), again->end()) != bytes) std::abort();
  return 0;
}
