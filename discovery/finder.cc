#include "discovery/finder.h"

#include <array>
#include <asio.hpp>
#include <map>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace tandem::discovery {

std::string Mismatch(const Announcement& a, const FindOptions& o) {
  if (a.cluster_name != o.cluster_name) {
    return absl::StrCat("cluster '", a.cluster_name, "', not '", o.cluster_name, "'");
  }
  if (o.model_tag.has_value() && a.model_tag != *o.model_tag)
    return "another model than this node's";
  if (o.ca_hash.has_value()) {
    if (a.security != Security::kTls) return "plain text, but this node's join token names a CA";
    if (a.ca_hash != *o.ca_hash) return "a CA other than the one this node's join token names";
  } else if (a.security == Security::kTls) {
    return "TLS: this node needs the cluster's join token";
  }
  return "";
}

absl::StatusOr<Found> FindCoordinator(const FindOptions& o) {
  asio::error_code ec;
  const asio::ip::address_v4 group = asio::ip::make_address_v4(o.endpoint.group, ec);
  if (ec || !group.is_multicast()) {
    return absl::InvalidArgumentError(
        absl::StrCat("not an IPv4 multicast group: ", o.endpoint.group));
  }
  asio::io_context io;
  asio::ip::udp::socket socket(io);
  auto fail = [&](const char* step) {
    return absl::UnavailableError(absl::StrCat("discovery: cannot ", step, ": ", ec.message()));
  };
  if (socket.open(asio::ip::udp::v4(), ec)) return fail("open a UDP socket");
  if (socket.bind(asio::ip::udp::endpoint(asio::ip::address_v4::any(), 0), ec)) {
    return fail("bind");
  }
  if (socket.set_option(asio::ip::multicast::hops(1), ec)) return fail("limit the hops");
  if (!o.interface_address.empty()) {
    const asio::ip::address_v4 iface = asio::ip::make_address_v4(o.interface_address, ec);
    if (ec)
      return absl::InvalidArgumentError("not an IPv4 interface address: " + o.interface_address);
    if (socket.set_option(asio::ip::multicast::outbound_interface(iface), ec)) {
      return fail("choose the interface");
    }
  }
  std::random_device rd;
  const uint64_t nonce = (static_cast<uint64_t>(rd()) << 32 | rd()) | 1;  // never 0
  auto probe = EncodeProbe({nonce, o.cluster_name});
  if (!probe.ok()) return probe.status();
  const asio::ip::udp::endpoint to(group, o.endpoint.port);

  std::optional<Found> found;
  std::map<std::string, std::string> heard;  // coordinator -> why it does not fit
  std::string send_error;
  std::array<char, kMaxDatagramBytes + 1> buffer{};
  asio::ip::udp::endpoint sender;
  asio::steady_timer probe_timer(io), deadline(io);

  std::function<void()> send_probe = [&] {
    asio::error_code send_ec;
    socket.send_to(asio::buffer(*probe), to, 0, send_ec);
    if (send_ec) send_error = send_ec.message();
    probe_timer.expires_after(o.probe_interval);
    probe_timer.async_wait([&](const asio::error_code& e) {
      if (!e) send_probe();
    });
  };
  std::function<void()> receive = [&] {
    socket.async_receive_from(
        asio::buffer(buffer), sender, [&](const asio::error_code& e, size_t n) {
          if (e) return;
          auto d = ParseDatagram(absl::string_view(buffer.data(), n));
          if (d.ok() && d->kind == Kind::kAnnouncement && d->announcement.nonce == nonce) {
            const Announcement& a = d->announcement;
            const std::string where = absl::StrCat(sender.address().to_string(), ":", a.port);
            const std::string why = Mismatch(a, o);
            if (why.empty()) {
              Found f;
              f.coordinator = where;
              f.announcement = a;
              // The local address on the way there (a connected UDP socket sends nothing).
              asio::ip::udp::socket route(io);
              asio::error_code rec;
              route.open(asio::ip::udp::v4(), rec);
              if (!rec) route.connect(asio::ip::udp::endpoint(sender.address(), a.port), rec);
              if (!rec) f.local_address = route.local_endpoint(rec).address().to_string();
              found = std::move(f);
              io.stop();
              return;
            }
            if (heard.emplace(where, why).second && o.on_ignored) o.on_ignored(where, why);
          }
          receive();
        });
  };
  deadline.expires_after(o.timeout);
  deadline.async_wait([&](const asio::error_code& e) {
    if (!e) io.stop();
  });
  send_probe();
  receive();
  io.run();
  if (found) return *found;
  std::string what;
  if (!heard.empty()) {
    std::vector<std::string> parts;
    for (const auto& [where, why] : heard) parts.push_back(absl::StrCat(where, ": ", why));
    what = absl::StrCat("; heard coordinators that do not fit: ", absl::StrJoin(parts, "; "));
  } else if (!send_error.empty()) {
    what = absl::StrCat("; probes could not be sent: ", send_error);
  }
  return absl::NotFoundError(absl::StrCat(
      "no coordinator of cluster '", o.cluster_name, "' answered on ", o.endpoint.group, ":",
      o.endpoint.port, " within ", o.timeout.count() / 1000.0, " s", what,
      what.empty() ? " (is one running with --announce on this LAN?)" : ""));
}

}  // namespace tandem::discovery
