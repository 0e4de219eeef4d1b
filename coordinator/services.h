// gRPC faces of the coordinator: the Coordinator service (nodes) and the Client service
// (users), as callback reactors: no thread per stream, no polling, nothing blocking on a
// reactor thread (registration, which pings the node, runs on an owned worker).
#pragma once

#include <grpcpp/grpcpp.h>

#include "base/work_queue.h"
#include "coordinator/coordinator.h"
#include "security/join_issuer.h"
#include "security/revocation.h"
#include "tandem.grpc.pb.h"

namespace tandem {

// Every handler authorizes its caller first (net/peer_auth.h): Join needs only the token's
// secret; Register, Heartbeat and Results a node certificate (bound to the node's record);
// Status and Generate any member's or client's certificate.
class CoordinatorServiceImpl final : public v1::Coordinator::CallbackService {
 public:
  // `issuer` signs joiners' certificates; null: the coordinator takes no joins (plaintext).
  // `revoked` (null on plaintext) is pushed to nodes in Register and Heartbeat replies.
  CoordinatorServiceImpl(Coordinator& c, const security::JoinIssuer* issuer,
                         std::shared_ptr<security::RevocationList> revoked = nullptr)
      : c_(c), issuer_(issuer), revoked_(std::move(revoked)) {}
  grpc::ServerUnaryReactor* Join(grpc::CallbackServerContext* context,
                                 const v1::JoinRequest* request,
                                 v1::JoinResponse* response) override;
  grpc::ServerUnaryReactor* Register(grpc::CallbackServerContext* context,
                                     const v1::RegisterRequest* request,
                                     v1::RegisterResponse* response) override;
  grpc::ServerUnaryReactor* Heartbeat(grpc::CallbackServerContext* context,
                                      const v1::HeartbeatRequest* request,
                                      v1::HeartbeatResponse* response) override;
  grpc::ServerReadReactor<v1::StepResult>* Results(grpc::CallbackServerContext* context,
                                                   v1::ResultsAck* ack) override;
  grpc::ServerUnaryReactor* Status(grpc::CallbackServerContext* context,
                                   const v1::StatusRequest* request,
                                   v1::StatusResponse* response) override;

 private:
  Coordinator& c_;
  const security::JoinIssuer* issuer_;
  const std::shared_ptr<security::RevocationList> revoked_;
  WorkQueue registrations_;
};

class ClientServiceImpl final : public v1::Client::CallbackService {
 public:
  explicit ClientServiceImpl(Coordinator& c) : c_(c) {}
  grpc::ServerWriteReactor<v1::GenerateReply>* Generate(
      grpc::CallbackServerContext* context, const v1::GenerateRequest* request) override;

 private:
  Coordinator& c_;
};

}  // namespace tandem
