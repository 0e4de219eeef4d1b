// A node's long-lived Results stream to the coordinator: sampled tokens and errors. Each
// write has a deadline (a hung or restarting coordinator cannot hold the node's worker);
// a broken stream is reopened on the next result. A result lost that way leaves its
// session without progress, which the coordinator notices (stall_timeout) and heals by
// replaying it.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <string>

#include "absl/status/status.h"
#include "net/write_deadline.h"
#include "tandem.grpc.pb.h"

namespace tandem {

class ResultsClient {
 public:
  explicit ResultsClient(std::string coordinator_address,
                         std::chrono::milliseconds write_timeout = std::chrono::seconds(5));
  ~ResultsClient();
  ResultsClient(const ResultsClient&) = delete;
  ResultsClient& operator=(const ResultsClient&) = delete;

  absl::Status Send(const v1::StepResult& result);

 private:
  void CloseLocked();
  const std::string address_;
  const std::chrono::milliseconds write_timeout_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Coordinator::Stub> stub_;
  WriteDeadline deadline_;
  std::mutex mutex_;
  std::unique_ptr<grpc::ClientContext> context_;
  v1::ResultsAck ack_;
  std::unique_ptr<grpc::ClientWriter<v1::StepResult>> writer_;
  std::chrono::steady_clock::time_point quiet_until_{};
};

}  // namespace tandem
