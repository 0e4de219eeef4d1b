// The sending end of a Forward stream to the next stage: one long-lived stream that
// many sessions share, for one plan epoch. Writes are serialised and each has a deadline;
// replies (rejected frames) arrive on a reader thread. A stream that broke (or whose write
// outlasted its deadline) is not reopened: frames it had accepted may be lost, so a new
// stream would show the next stage gaps in its sessions. Every later Send fails with
// UNAVAILABLE, and the coordinator re-plans under a new epoch.
#pragma once

#include <grpcpp/grpcpp.h>

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "net/link_security.h"
#include "net/node_link.h"
#include "net/write_deadline.h"
#include "tandem.grpc.pb.h"

namespace tandem {

class ForwardClient : public FrameSink {
 public:
  using ReplyHandler = std::function<void(const v1::FrameReply&)>;
  // `identity`: the certificate the stage at `address` must present.
  ForwardClient(std::string address, std::string identity, ReplyHandler on_reply,
                std::chrono::milliseconds write_timeout = kDefaultWriteTimeout);
  ~ForwardClient();
  ForwardClient(const ForwardClient&) = delete;
  ForwardClient& operator=(const ForwardClient&) = delete;

  const std::string& address() const { return address_; }
  absl::Status Send(const v1::ActivationFrame& frame) override;
  void Abort() override;

  static constexpr std::chrono::milliseconds kDefaultWriteTimeout{5000};

 private:
  struct Stream {
    grpc::ClientContext context;
    std::unique_ptr<grpc::ClientReaderWriter<v1::ActivationFrame, v1::FrameReply>> rw;
    std::thread reader;
  };
  absl::Status OpenLocked();
  void CloseLocked();

  const std::string address_;
  ReplyHandler on_reply_;
  const std::chrono::milliseconds write_timeout_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Node::Stub> stub_;
  WriteDeadline deadline_;
  std::mutex mutex_;  // guards what follows; held across a write
  std::unique_ptr<Stream> stream_;
  std::string broken_;  // why the stream broke; empty while it serves
  // Abort() cancels the stream without waiting for a write in progress.
  std::mutex abort_mutex_;
  grpc::ClientContext* live_context_ = nullptr;
  bool aborted_ = false;
};

}  // namespace tandem
