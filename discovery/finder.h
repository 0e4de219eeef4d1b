// The node's side of discovery (`tandem node --discover`): probes the multicast group until
// a coordinator of the same cluster name, model and security answers, or the time is up.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "discovery/announcer.h"
#include "discovery/datagram.h"

namespace tandem::discovery {

struct FindOptions {
  Endpoint endpoint;
  std::string interface_address;  // empty: the one the group routes to
  std::string cluster_name = "tandem";
  std::optional<Digest> model_tag;  // the node's model; none: any (a node that fetches)
  // The CA hash the node's join token names: then only a TLS cluster with this CA fits;
  // without one, only a plain-text cluster fits.
  std::optional<Digest> ca_hash;
  // Told once per coordinator heard that does not fit, with why (e.g. another CA).
  std::function<void(const std::string& where, const std::string& why)> on_ignored;
  std::chrono::milliseconds timeout{30000};
  std::chrono::milliseconds probe_interval{500};
};

struct Found {
  std::string coordinator;    // HOST:PORT to register with
  std::string local_address;  // this host's address on the way to it
  Announcement announcement;
};

// Why an announcement does not fit `options`, or "" when it does.
std::string Mismatch(const Announcement& a, const FindOptions& options);

// The first coordinator that answers and fits. After the timeout, an error that says what
// was heard (e.g. a coordinator with another model) or that nothing answered.
absl::StatusOr<Found> FindCoordinator(const FindOptions& options);

}  // namespace tandem::discovery
