// The discovery flags of `tandem coordinator` (--announce) and `tandem node` (--discover),
// and what they start: kept here so the two commands each hold one hook.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "discovery/announcer.h"
#include "model/gguf.h"

namespace tandem::cli {

struct DiscoveryFlags {
  bool enabled = false;  // --announce or --discover
  std::string cluster_name = "tandem";
  std::string address = "239.255.77.77:7077";  // the multicast group and port
  double timeout_s = 30;                       // --discover only
};

void AddAnnounceFlags(CLI::App* cmd, DiscoveryFlags& f);
void AddDiscoverFlags(CLI::App* cmd, DiscoveryFlags& f);

// `tandem coordinator --announce`: announces the coordinator serving `model` on `listen`
// (its bound `port`); null when not asked for. A loopback --listen is refused: nothing on
// the LAN could reach it. `ca_sha256` (hex) is the TLS cluster's CA certificate hash, which
// the announcement carries; empty: a plain-text cluster.
absl::StatusOr<std::unique_ptr<discovery::Announcer>> StartAnnouncer(
    const DiscoveryFlags& f, const std::string& listen, int port, const GgufFile& model,
    const std::string& ca_sha256 = "");

// `tandem node --discover`: finds the coordinator of `model`'s cluster (any model's when
// null: a node that fetches its layers) and sets
// `coordinator`; when `listen` is still the loopback default, it becomes this host's
// address on the way to the coordinator (port 0: any). With `ca_sha256` (the join token's
// CA hash, hex) only a TLS cluster under that CA fits; without, only a plain-text one. An
// announcer that does not fit is ignored, with a line in the log saying why.
absl::Status Discover(const DiscoveryFlags& f, const GgufFile* model, std::string* coordinator,
                      std::string* listen, const std::string& ca_sha256 = "");

}  // namespace tandem::cli
