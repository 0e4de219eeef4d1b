#include "net/coordinator_client.h"

#include "net/convert.h"
#include "net/link_security.h"
#include "security/pki.h"

namespace tandem {

CoordinatorClient::CoordinatorClient(const std::string& address)
    : channel_(MakeChannel(address, security::kCoordinatorIdentity)),
      stub_(v1::Coordinator::NewStub(channel_)) {}

void CoordinatorClient::Failed() {
  // The next call connects at once: a restarted coordinator is found within a heartbeat,
  // not after gRPC's reconnect backoff (which grows to minutes).
  grpc::experimental::ChannelResetConnectionBackoff(channel_.get());
}

absl::StatusOr<v1::RegisterResponse> CoordinatorClient::Register(
    const v1::RegisterRequest& request, std::chrono::milliseconds deadline) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + deadline);
  v1::RegisterResponse response;
  grpc::Status s = stub_->Register(&ctx, request, &response);
  if (!s.ok()) {
    Failed();
    return FromGrpcStatus(s);
  }
  return response;
}

absl::StatusOr<v1::HeartbeatResponse> CoordinatorClient::Heartbeat(
    const v1::HeartbeatRequest& request, std::chrono::milliseconds deadline) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + deadline);
  v1::HeartbeatResponse response;
  grpc::Status s = stub_->Heartbeat(&ctx, request, &response);
  if (!s.ok()) {
    Failed();
    return FromGrpcStatus(s);
  }
  return response;
}

}  // namespace tandem
