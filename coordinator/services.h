// gRPC faces of the coordinator: the Coordinator service (nodes) and the Client service
// (users). Synchronous handlers: each call is short, or a stream that waits on events.
#pragma once

#include <grpcpp/grpcpp.h>

#include "coordinator/coordinator.h"
#include "tandem.grpc.pb.h"

namespace tandem {

class CoordinatorServiceImpl final : public v1::Coordinator::Service {
 public:
  explicit CoordinatorServiceImpl(Coordinator& c) : c_(c) {}
  grpc::Status Register(grpc::ServerContext*, const v1::RegisterRequest* request,
                        v1::RegisterResponse* response) override;
  grpc::Status Heartbeat(grpc::ServerContext*, const v1::HeartbeatRequest* request,
                         v1::HeartbeatResponse* response) override;
  grpc::Status Results(grpc::ServerContext*, grpc::ServerReader<v1::StepResult>* reader,
                       v1::ResultsAck* ack) override;
  grpc::Status Status(grpc::ServerContext*, const v1::StatusRequest*,
                      v1::StatusResponse* response) override;

 private:
  Coordinator& c_;
};

class ClientServiceImpl final : public v1::Client::Service {
 public:
  explicit ClientServiceImpl(Coordinator& c) : c_(c) {}
  grpc::Status Generate(grpc::ServerContext* context, const v1::GenerateRequest* request,
                        grpc::ServerWriter<v1::GenerateReply>* writer) override;

 private:
  Coordinator& c_;
};

}  // namespace tandem
