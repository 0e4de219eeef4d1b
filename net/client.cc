#include "net/client.h"

#include <grpcpp/grpcpp.h>

#include "net/convert.h"
#include "net/link_security.h"
#include "security/pki.h"
#include "tandem.grpc.pb.h"

namespace tandem {

absl::StatusOr<RemoteGeneration> RemoteGenerate(
    const std::string& address, const v1::GenerateRequest& request,
    const std::function<void(int32_t, const std::string&)>& on_piece) {
  auto stub = v1::Client::NewStub(MakeChannel(address, security::kCoordinatorIdentity));
  grpc::ClientContext ctx;
  auto reader = stub->Generate(&ctx, request);
  RemoteGeneration out;
  v1::GenerateReply reply;
  bool first = true;
  while (reader->Read(&reply)) {
    if (first) {
      out.prompt_ids.assign(reply.prompt_ids().begin(), reply.prompt_ids().end());
      first = false;
    }
    if (reply.has_token()) {
      out.ids.push_back(reply.token());
      out.text += reply.piece();
      if (on_piece) on_piece(reply.token(), reply.piece());
    }
    if (reply.done()) {
      out.prompt_ms = reply.prompt_ms();
      out.decode_ms = reply.decode_ms();
      out.n_decode_steps = reply.n_decode_steps();
    }
  }
  grpc::Status s = reader->Finish();
  if (!s.ok()) {
    if (s.error_code() == grpc::StatusCode::UNAVAILABLE && first) {
      return absl::UnavailableError("cannot reach the coordinator at " + address + ": " +
                                    s.error_message());
    }
    if (s.error_code() == grpc::StatusCode::UNAVAILABLE) {
      // The coordinator holds the sessions' histories in memory only: its crash or restart
      // loses the answers in flight. The request can be sent again as it was.
      return absl::UnavailableError(
          "the coordinator at " + address + " went away mid-answer (" + s.error_message() +
          "): this request was lost with it; send it again once the cluster is back");
    }
    return FromGrpcStatus(s);
  }
  return out;
}

absl::StatusOr<v1::StatusResponse> RemoteStatus(const std::string& address, int timeout_ms) {
  auto stub = v1::Coordinator::NewStub(MakeChannel(address, security::kCoordinatorIdentity));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms));
  v1::StatusResponse resp;
  grpc::Status s = stub->Status(&ctx, v1::StatusRequest(), &resp);
  if (!s.ok()) return FromGrpcStatus(s);
  return resp;
}

}  // namespace tandem
