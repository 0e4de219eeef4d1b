#include "cli/discovery_flags.h"

#include <algorithm>
#include <cstdio>
#include <random>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "discovery/finder.h"
#include "model/fingerprint.h"

namespace tandem::cli {
namespace {

std::string HostOf(const std::string& address) { return address.substr(0, address.rfind(':')); }

// A CA hash as 64 hex digits (the join token's, or the CA certificate's) as a digest.
absl::StatusOr<discovery::Digest> CaDigest(const std::string& hex) {
  discovery::Digest out{};
  if (hex.size() != 2 * out.size() ||
      hex.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) {
    return absl::InvalidArgumentError("a CA hash is 64 hexadecimal digits");
  }
  const std::string bytes = absl::HexStringToBytes(hex);
  std::copy(bytes.begin(), bytes.end(), out.begin());
  return out;
}

void AddCommonFlags(CLI::App* cmd, DiscoveryFlags& f) {
  cmd->add_option("--cluster-name", f.cluster_name,
                  "Cluster name in discovery (letters, digits, . _ -)")
      ->capture_default_str();
  cmd->add_option("--discovery-address", f.address, "Discovery's multicast GROUP:PORT")
      ->capture_default_str();
}

}  // namespace

void AddAnnounceFlags(CLI::App* cmd, DiscoveryFlags& f) {
  cmd->add_flag("--announce", f.enabled,
                "Announce this coordinator on the LAN (UDP multicast, one hop) and answer "
                "`tandem node --discover`");
  AddCommonFlags(cmd, f);
}

void AddDiscoverFlags(CLI::App* cmd, DiscoveryFlags& f) {
  cmd->add_flag("--discover", f.enabled,
                "Find the coordinator on the LAN (one started with --announce) instead of "
                "--coordinator");
  cmd->add_option("--discover-timeout", f.timeout_s, "Seconds to look for a coordinator")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str();
  AddCommonFlags(cmd, f);
}

absl::StatusOr<std::unique_ptr<discovery::Announcer>> StartAnnouncer(const DiscoveryFlags& f,
                                                                     const std::string& listen,
                                                                     int port,
                                                                     const GgufFile& model,
                                                                     const std::string& ca_sha256) {
  if (!f.enabled) return nullptr;
  auto endpoint = discovery::ParseEndpoint(f.address);
  if (!endpoint.ok()) return endpoint.status();
  const std::string host = HostOf(listen);
  if (host == "localhost" || host.rfind("127.", 0) == 0 || host == "[::1]") {
    return absl::InvalidArgumentError(
        absl::StrCat("--announce needs a LAN address to listen on (e.g. --listen 0.0.0.0:", port,
                     "); nothing on the LAN can reach ", listen));
  }
  discovery::Announcement what;
  what.cluster_name = f.cluster_name;
  what.port = static_cast<uint16_t>(port);
  std::random_device rd;
  what.boot_id = (static_cast<uint64_t>(rd()) << 32 | rd()) | 1;
  what.model_tag = discovery::ModelTag(ModelFingerprint(model));
  if (!ca_sha256.empty()) {
    auto ca = CaDigest(ca_sha256);
    if (!ca.ok()) return ca.status();
    what.security = discovery::Security::kTls;
    what.ca_hash = *ca;
  }
  discovery::AnnouncerOptions options;
  options.endpoint = *endpoint;
  if (host != "0.0.0.0" && host != "[::]" && host.find(':') == std::string::npos) {
    options.interface_address = host;
  }
  auto announcer = discovery::Announcer::Start(what, options);
  if (!announcer.ok()) return announcer.status();
  std::fprintf(stderr, "tandem coordinator: announcing %s cluster '%s' on %s:%d\n",
               ca_sha256.empty() ? "plain-text" : "TLS", f.cluster_name.c_str(),
               endpoint->group.c_str(), endpoint->port);
  return announcer;
}

absl::Status Discover(const DiscoveryFlags& f, const GgufFile* model, std::string* coordinator,
                      std::string* listen, const std::string& ca_sha256) {
  auto endpoint = discovery::ParseEndpoint(f.address);
  if (!endpoint.ok()) return endpoint.status();
  discovery::FindOptions o;
  o.endpoint = *endpoint;
  o.cluster_name = f.cluster_name;
  if (!discovery::ValidClusterName(o.cluster_name)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--cluster-name takes 1 to 64 letters, digits, '.', '_' or '-', not '",
                     f.cluster_name, "'"));
  }
  if (model != nullptr) o.model_tag = discovery::ModelTag(ModelFingerprint(*model));
  o.timeout = std::chrono::milliseconds(static_cast<int64_t>(f.timeout_s * 1000));
  if (!ca_sha256.empty()) {
    auto ca = CaDigest(ca_sha256);
    if (!ca.ok()) return ca.status();
    o.ca_hash = *ca;
  }
  o.on_ignored = [](const std::string& where, const std::string& why) {
    std::fprintf(stderr, "tandem node: ignoring the coordinator at %s: %s\n", where.c_str(),
                 why.c_str());
  };
  std::fprintf(stderr, "tandem node: looking for cluster '%s' on %s:%d\n", f.cluster_name.c_str(),
               endpoint->group.c_str(), endpoint->port);
  auto found = discovery::FindCoordinator(o);
  if (!found.ok()) return found.status();
  *coordinator = found->coordinator;
  if (HostOf(*listen) == "127.0.0.1" && !found->local_address.empty()) {
    *listen = absl::StrCat(found->local_address, ":", listen->substr(listen->rfind(':') + 1));
  }
  std::fprintf(stderr, "tandem node: found the coordinator at %s; serving on %s\n",
               coordinator->c_str(), listen->c_str());
  return absl::OkStatus();
}

}  // namespace tandem::cli
