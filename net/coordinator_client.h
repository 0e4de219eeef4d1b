// A node's typed calls to the coordinator's membership service: Register and Heartbeat,
// each with a deadline.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "tandem.grpc.pb.h"

namespace tandem {

class CoordinatorClient {
 public:
  explicit CoordinatorClient(const std::string& address);

  // The coordinator's answer (accepted or refused with a reason), or UNAVAILABLE.
  absl::StatusOr<v1::RegisterResponse> Register(const v1::RegisterRequest& request,
                                                std::chrono::milliseconds deadline);
  absl::StatusOr<v1::HeartbeatResponse> Heartbeat(const v1::HeartbeatRequest& request,
                                                  std::chrono::milliseconds deadline);

 private:
  void Failed();
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Coordinator::Stub> stub_;
};

}  // namespace tandem
