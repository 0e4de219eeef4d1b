// How the coordinator reaches its nodes: configure a stage, measure a round trip, and
// stream frames to the first stage. The coordinator holds only this interface, so a fake
// drives it in tests (coordinator/coordinator_test.cc); NewGrpcNodeLink is the real one.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "tandem.pb.h"

namespace tandem {

// The sending end of a stream of activation frames.
class FrameSink {
 public:
  virtual ~FrameSink() = default;
  virtual absl::Status Send(const v1::ActivationFrame& frame) = 0;
  // Ends the stream at once: a write blocked in Send returns, later ones fail.
  virtual void Abort() {}
};

// Each call names the node by its address and by the identity its certificate must show
// (net/link_security.h; empty on plaintext links).
class NodeLink {
 public:
  virtual ~NodeLink() = default;
  // The node's answer, or UNAVAILABLE when it cannot be reached. Loading a shard may take
  // minutes; the call gives up early once `alive` (asked every 100 ms) turns false.
  virtual absl::StatusOr<v1::ConfigureResponse> Configure(const std::string& address,
                                                          const std::string& identity,
                                                          const v1::ConfigureRequest& request,
                                                          const std::function<bool()>& alive) = 0;
  // Median round trip in milliseconds, within about a second; 0 when the node does not
  // answer.
  virtual double MeasureRttMs(const std::string& address, const std::string& identity) = 0;
  // A long-lived frame stream to the node at `address`.
  virtual std::shared_ptr<FrameSink> OpenFrameStream(const std::string& address,
                                                     const std::string& identity) = 0;
  // True when the node's address refuses a connection: its process is gone. False when it
  // answers, and when no answer comes in time (a slow or unreachable host is left to the
  // heartbeat timeout).
  virtual bool Refused(const std::string& address, const std::string& identity) = 0;
};

std::unique_ptr<NodeLink> NewGrpcNodeLink();

}  // namespace tandem
