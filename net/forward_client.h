// The sending end of a Forward stream to the next stage: one long-lived stream that
// many sessions share. Writes are serialised; replies (rejected frames) arrive on a
// reader thread. A broken stream is reopened on the next send.
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
#include "tandem.grpc.pb.h"

namespace tandem {

class ForwardClient : public FrameSink {
 public:
  using ReplyHandler = std::function<void(const v1::FrameReply&)>;
  // `identity`: the certificate the stage at `address` must present.
  ForwardClient(std::string address, std::string identity, ReplyHandler on_reply);
  ~ForwardClient();
  ForwardClient(const ForwardClient&) = delete;
  ForwardClient& operator=(const ForwardClient&) = delete;

  const std::string& address() const { return address_; }
  absl::Status Send(const v1::ActivationFrame& frame) override;

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
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Node::Stub> stub_;
  std::mutex mutex_;
  std::unique_ptr<Stream> stream_;
};

}  // namespace tandem
