#include "coordinator/services.h"

#include <chrono>

#include "net/convert.h"

namespace tandem {

grpc::Status CoordinatorServiceImpl::Register(grpc::ServerContext*, const v1::RegisterRequest* request,
                                              v1::RegisterResponse* response) {
  *response = c_.Register(*request);
  return grpc::Status::OK;
}

grpc::Status CoordinatorServiceImpl::Heartbeat(grpc::ServerContext*, const v1::HeartbeatRequest* request,
                                               v1::HeartbeatResponse* response) {
  response->set_known(c_.Heartbeat(*request));
  return grpc::Status::OK;
}

grpc::Status CoordinatorServiceImpl::Results(grpc::ServerContext*,
                                             grpc::ServerReader<v1::StepResult>* reader,
                                             v1::ResultsAck*) {
  v1::StepResult r;
  while (reader->Read(&r)) c_.OnResult(r);
  return grpc::Status::OK;
}

grpc::Status CoordinatorServiceImpl::Status(grpc::ServerContext*, const v1::StatusRequest*,
                                            v1::StatusResponse* response) {
  *response = c_.Status();
  return grpc::Status::OK;
}

grpc::Status ClientServiceImpl::Generate(grpc::ServerContext* context,
                                         const v1::GenerateRequest* request,
                                         grpc::ServerWriter<v1::GenerateReply>* writer) {
  std::vector<int32_t> prompt_ids;
  auto session = c_.StartSession(*request, &prompt_ids);
  if (!session.ok()) return ToGrpcStatus(session.status());
  std::shared_ptr<Session> s = *session;
  v1::GenerateReply header;
  for (int32_t id : prompt_ids) header.add_prompt_ids(id);
  if (!writer->Write(header)) {
    c_.CancelSession(s->id());
    return grpc::Status::CANCELLED;
  }
  // A session may wait through a re-plan, but not forever.
  constexpr auto kStallLimit = std::chrono::seconds(120);
  auto last_event = std::chrono::steady_clock::now();
  for (;;) {
    auto event = s->Pop(std::chrono::milliseconds(200));
    if (!event) {
      if (context->IsCancelled()) {
        c_.CancelSession(s->id());
        return grpc::Status::CANCELLED;
      }
      if (std::chrono::steady_clock::now() - last_event > kStallLimit) {
        c_.CancelSession(s->id());
        return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                            "no progress for 120 s: the cluster lost a node and cannot re-plan");
      }
      continue;
    }
    last_event = std::chrono::steady_clock::now();
    if (!event->error.ok()) return ToGrpcStatus(event->error);
    v1::GenerateReply reply;
    if (event->has_token) {
      reply.set_has_token(true);
      reply.set_token(event->token);
      reply.set_piece(c_.tokenizer().TokenToPiece(event->token, /*render_special=*/false));
    }
    if (event->done) {
      using Ms = std::chrono::duration<double, std::milli>;
      reply.set_done(true);
      if (s->n_generated() > 0) {
        reply.set_prompt_ms(Ms(s->first_token - s->started).count());
        reply.set_decode_ms(Ms(s->last_token - s->first_token).count());
        reply.set_n_decode_steps(s->n_generated() - 1);
      }
    }
    if (!writer->Write(reply)) {
      c_.CancelSession(s->id());
      return grpc::Status::CANCELLED;
    }
    if (event->done) return grpc::Status::OK;
  }
}

}  // namespace tandem
