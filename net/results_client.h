// A node's long-lived Results stream to the coordinator: sampled tokens and errors.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <mutex>
#include <string>

#include "absl/status/status.h"
#include "tandem.grpc.pb.h"

namespace tandem {

class ResultsClient {
 public:
  explicit ResultsClient(std::string coordinator_address);
  ~ResultsClient();
  ResultsClient(const ResultsClient&) = delete;
  ResultsClient& operator=(const ResultsClient&) = delete;

  absl::Status Send(const v1::StepResult& result);

 private:
  void CloseLocked();
  const std::string address_;
  std::unique_ptr<v1::Coordinator::Stub> stub_;
  std::mutex mutex_;
  std::unique_ptr<grpc::ClientContext> context_;
  v1::ResultsAck ack_;
  std::unique_ptr<grpc::ClientWriter<v1::StepResult>> writer_;
};

}  // namespace tandem
