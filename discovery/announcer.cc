#include "discovery/announcer.h"

#include <array>
#include <asio.hpp>
#include <atomic>
#include <cstdio>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace tandem::discovery {

absl::StatusOr<Endpoint> ParseEndpoint(const std::string& text) {
  const size_t colon = text.rfind(':');
  Endpoint e;
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(text.substr(colon + 1), &port) || port < 1 ||
      port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("a discovery address is GROUP:PORT (e.g. ",
                                                   kDefaultGroup, ":", kDefaultPort, "), not '",
                                                   text, "'"));
  }
  asio::error_code ec;
  const asio::ip::address_v4 group = asio::ip::make_address_v4(text.substr(0, colon), ec);
  if (ec || !group.is_multicast()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the discovery group must be an IPv4 multicast address (224.0.0.0/4), not '",
                     text.substr(0, colon), "'"));
  }
  e.group = group.to_string();
  e.port = static_cast<uint16_t>(port);
  return e;
}

struct Announcer::Impl {
  asio::io_context io;
  asio::ip::udp::socket socket{io};
  asio::steady_timer timer{io};
  asio::ip::udp::endpoint group;
  asio::ip::udp::endpoint sender;
  std::array<char, kMaxDatagramBytes + 1> buffer{};
  Announcement what;
  AnnouncerOptions options;
  std::thread thread;
  std::atomic<uint64_t> answered{0};
  std::chrono::steady_clock::time_point window_start{};
  int window_replies = 0;

  void SendTo(uint64_t nonce, const asio::ip::udp::endpoint& to) {
    Announcement a = what;
    a.nonce = nonce;
    auto bytes = EncodeAnnouncement(a);
    if (!bytes.ok()) return;  // checked in Start
    asio::error_code ec;
    socket.send_to(asio::buffer(*bytes), to, 0, ec);  // UDP: a lost datagram is retried
  }

  void Announce() {
    SendTo(0, group);
    timer.expires_after(options.interval);
    timer.async_wait([this](const asio::error_code& ec) {
      if (!ec) Announce();
    });
  }

  bool UnderRateLimit() {
    const auto now = std::chrono::steady_clock::now();
    if (now - window_start >= std::chrono::seconds(1)) {
      window_start = now;
      window_replies = 0;
    }
    return window_replies++ < options.max_replies_per_second;
  }

  void Receive() {
    socket.async_receive_from(asio::buffer(buffer), sender,
                              [this](const asio::error_code& ec, size_t n) {
                                if (ec == asio::error::operation_aborted) return;
                                if (!ec) {
                                  // One byte more than the largest datagram: a longer one is
                                  // refused by the parser.
                                  auto d = ParseDatagram(absl::string_view(buffer.data(), n));
                                  if (d.ok() && d->kind == Kind::kProbe && UnderRateLimit()) {
                                    SendTo(d->probe.nonce, sender);
                                    answered.fetch_add(1, std::memory_order_relaxed);
                                  }
                                }
                                Receive();
                              });
  }
};

Announcer::Announcer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Announcer::~Announcer() {
  asio::post(impl_->io, [impl = impl_.get()] {
    impl->timer.cancel();
    asio::error_code ec;
    impl->socket.close(ec);
  });
  if (impl_->thread.joinable()) impl_->thread.join();
}

uint64_t Announcer::probes_answered() const { return impl_->answered.load(); }

absl::StatusOr<std::unique_ptr<Announcer>> Announcer::Start(const Announcement& what,
                                                            const AnnouncerOptions& options) {
  if (auto bytes = EncodeAnnouncement(what); !bytes.ok()) return bytes.status();
  if (options.interval.count() < 100 || options.max_replies_per_second < 1) {
    return absl::InvalidArgumentError("announcements at most every 100 ms, 1 reply a second");
  }
  auto impl = std::make_unique<Impl>();
  impl->what = what;
  impl->options = options;
  asio::error_code ec;
  const asio::ip::address_v4 group = asio::ip::make_address_v4(options.endpoint.group, ec);
  if (ec || !group.is_multicast()) {
    return absl::InvalidArgumentError(
        absl::StrCat("not an IPv4 multicast group: ", options.endpoint.group));
  }
  asio::ip::address_v4 iface = asio::ip::address_v4::any();
  if (!options.interface_address.empty()) {
    iface = asio::ip::make_address_v4(options.interface_address, ec);
    if (ec) {
      return absl::InvalidArgumentError(
          absl::StrCat("not an IPv4 interface address: ", options.interface_address));
    }
  }
  impl->group = asio::ip::udp::endpoint(group, options.endpoint.port);
  auto& s = impl->socket;
  auto fail = [&](const char* step) {
    return absl::UnavailableError(absl::StrCat("discovery: cannot ", step, " (",
                                               options.endpoint.group, ":", options.endpoint.port,
                                               "): ", ec.message()));
  };
  if (s.open(asio::ip::udp::v4(), ec)) return fail("open a UDP socket");
  if (s.set_option(asio::socket_base::reuse_address(true), ec)) return fail("share the port");
  if (s.bind(asio::ip::udp::endpoint(asio::ip::address_v4::any(), options.endpoint.port), ec)) {
    return fail("bind the discovery port");
  }
  if (s.set_option(asio::ip::multicast::join_group(group, iface), ec)) {
    return fail("join the multicast group");
  }
  // One hop: announcements stay on the LAN.
  if (s.set_option(asio::ip::multicast::hops(1), ec)) return fail("limit the hops");
  if (s.set_option(asio::ip::multicast::enable_loopback(true), ec)) return fail("loop back");
  if (!options.interface_address.empty() &&
      s.set_option(asio::ip::multicast::outbound_interface(iface), ec)) {
    return fail("choose the interface");
  }
  Impl* p = impl.get();
  asio::post(p->io, [p] {
    p->Receive();
    p->Announce();
  });
  p->thread = std::thread([p] { p->io.run(); });
  return std::unique_ptr<Announcer>(new Announcer(std::move(impl)));
}

}  // namespace tandem::discovery
