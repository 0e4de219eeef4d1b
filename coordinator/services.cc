#include "coordinator/services.h"

#include <chrono>
#include <cstdio>
#include <deque>
#include <memory>
#include <mutex>
#include <new>
#include <optional>

#include "absl/strings/str_cat.h"
#include "net/convert.h"
#include "net/frames.h"
#include "net/peer_auth.h"

namespace tandem {

grpc::ServerUnaryReactor* CoordinatorServiceImpl::Join(grpc::CallbackServerContext* context,
                                                       const v1::JoinRequest* request,
                                                       v1::JoinResponse* response) {
  auto* reactor = context->DefaultReactor();
  if (!issuer_) {
    reactor->Finish(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                                 "this coordinator runs without --state-dir and takes no joins"));
    return reactor;
  }
  // Signing is quick but not free: off the reactor thread, with the registrations.
  registrations_.Post([this, reactor, request, response, peer = context->peer()] {
    absl::StatusOr<security::Issued> issued;
    if (request->protocol_version() != kProtocolVersion) {
      issued = absl::FailedPreconditionError(
          absl::StrCat("protocol version ", request->protocol_version(),
                       " is not supported; the coordinator speaks ", kProtocolVersion));
    } else {
      issued = issuer_->Join(request->secret(), request->csr_pem(), request->role());
    }
    if (!issued.ok()) {
      std::fprintf(stderr, "tandem coordinator: refused a join from %s: %s\n", peer.c_str(),
                   std::string(issued.status().message()).c_str());
      reactor->Finish(ToGrpcStatus(issued.status()));
      return;
    }
    std::fprintf(stderr, "tandem coordinator: %s joined from %s\n", issued->identity.c_str(),
                 peer.c_str());
    response->set_identity(issued->identity);
    response->set_cert_chain_pem(issued->cert_chain_pem);
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerUnaryReactor* CoordinatorServiceImpl::Register(grpc::CallbackServerContext* context,
                                                           const v1::RegisterRequest* request,
                                                           v1::RegisterResponse* response) {
  auto* reactor = context->DefaultReactor();
  if (grpc::Status s = AuthorizePeer(*context, "Register", kRoleNode); !s.ok()) {
    reactor->Finish(s);
    return reactor;
  }
  registrations_.Post([this, reactor, request, response, identity = PeerIdentity(*context)] {
    *response = c_.Register(*request, identity);
    if (revoked_) {
      for (std::string& id : revoked_->Identities())
        response->add_revoked_identities(std::move(id));
    }
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerUnaryReactor* CoordinatorServiceImpl::Heartbeat(grpc::CallbackServerContext* context,
                                                            const v1::HeartbeatRequest* request,
                                                            v1::HeartbeatResponse* response) {
  auto* reactor = context->DefaultReactor();
  grpc::Status s = AuthorizePeer(*context, "Heartbeat", kRoleNode);
  if (s.ok()) {
    *response = c_.Heartbeat(*request, PeerIdentity(*context));
    if (revoked_) {
      for (std::string& id : revoked_->Identities())
        response->add_revoked_identities(std::move(id));
    }
  }
  reactor->Finish(s);
  return reactor;
}

grpc::ServerUnaryReactor* CoordinatorServiceImpl::Status(grpc::CallbackServerContext* context,
                                                         const v1::StatusRequest*,
                                                         v1::StatusResponse* response) {
  auto* reactor = context->DefaultReactor();
  grpc::Status s = AuthorizePeer(*context, "Status", kRoleAnyMember);
  if (s.ok()) *response = c_.Status();
  reactor->Finish(s);
  return reactor;
}

namespace {

// A node's stream of sampled tokens and errors: each result is handed to the coordinator,
// which never blocks on it.
// A result the coordinator refuses ends the stream with the reason; the log names the
// peer. (A node's ResultsClient reopens its stream on its next result.)
class ResultsReactor : public grpc::ServerReadReactor<v1::StepResult> {
 public:
  ResultsReactor(Coordinator& c, std::string peer, std::string identity,
                 const grpc::Status& authorized)
      : c_(c), peer_(std::move(peer)), identity_(std::move(identity)) {
    if (!authorized.ok()) {
      Finish(authorized);
      return;
    }
    StartRead(&result_);
  }
  void OnReadDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status::OK);
      return;
    }
    absl::Status s;
    try {
      s = c_.OnResult(result_, identity_);
    } catch (const std::bad_alloc&) {
      s = absl::ResourceExhaustedError("the coordinator is out of memory for results");
    }
    if (!s.ok()) {
      std::fprintf(stderr, "tandem coordinator: refused a result from %s (%s): %s\n", peer_.c_str(),
                   result_.node_id().c_str(), std::string(s.message()).c_str());
      Finish(ToGrpcStatus(s));
      return;
    }
    result_.Clear();
    StartRead(&result_);
  }
  void OnDone() override { delete this; }

 private:
  Coordinator& c_;
  const std::string peer_;
  const std::string identity_;
  v1::StepResult result_;
};

// One Generate call: the header (prompt ids), then a reply per session event, one write in
// flight. Events arrive on coordinator threads; the reactor may be gone by then, so they
// reach it through a Mailbox it detaches from when done.
class GenerateReactor : public grpc::ServerWriteReactor<v1::GenerateReply> {
 public:
  struct Mailbox {
    std::mutex mutex;
    GenerateReactor* reactor = nullptr;
    std::deque<SessionEvent> early;  // events before the reactor was ready for them
  };

  GenerateReactor(Coordinator& c, const v1::GenerateRequest& request,
                  const grpc::Status& authorized)
      : c_(c), mailbox_(std::make_shared<Mailbox>()) {
    if (!authorized.ok()) {
      finished_ = true;
      Finish(authorized);
      return;
    }
    std::weak_ptr<Mailbox> weak = mailbox_;
    absl::StatusOr<std::shared_ptr<Session>> session;
    try {
      session = c_.StartSession(request, [weak](const SessionEvent& e) {
        auto box = weak.lock();
        if (!box) return;
        std::lock_guard<std::mutex> lock(box->mutex);
        if (box->reactor) {
          box->reactor->OnEvent(e);
        } else {
          box->early.push_back(e);
        }
      });
    } catch (const std::bad_alloc&) {
      session = absl::ResourceExhaustedError("the coordinator is out of memory for a session");
    }
    if (!session.ok()) {
      Finish(ToGrpcStatus(session.status()));
      return;
    }
    session_ = *session;
    v1::GenerateReply header;
    for (TokenId id : session_->state().request().prompt_ids) header.add_prompt_ids(id);
    std::lock_guard<std::mutex> lock(mailbox_->mutex);
    Queue(std::move(header));
    mailbox_->reactor = this;
    for (const SessionEvent& e : mailbox_->early) OnEvent(e);
    mailbox_->early.clear();
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> lock(mailbox_->mutex);
    replies_.pop_front();
    if (!ok || finished_) {
      Cancel();
      return;
    }
    if (!replies_.empty()) {
      StartWrite(&replies_.front());
    } else if (final_status_) {
      FinishOnce(*final_status_);
    }
  }

  void OnCancel() override {
    std::lock_guard<std::mutex> lock(mailbox_->mutex);
    Cancel();
  }

  void OnDone() override {
    {
      std::lock_guard<std::mutex> lock(mailbox_->mutex);
      mailbox_->reactor = nullptr;
    }
    if (session_ && !ended_) c_.CancelSession(session_->id());
    delete this;
  }

 private:
  // Called with the mailbox lock held.
  void OnEvent(const SessionEvent& e) {
    if (finished_) return;
    if (!e.error.ok()) {
      ended_ = true;
      Complete(ToGrpcStatus(e.error));
      return;
    }
    v1::GenerateReply reply;
    if (e.has_token) {
      reply.set_has_token(true);
      reply.set_token(e.token);
      reply.set_piece(c_.tokenizer().TokenToPiece(e.token, /*render_special=*/false));
    }
    if (e.done) {
      ended_ = true;
      using Ms = std::chrono::duration<double, std::milli>;
      reply.set_done(true);
      if (session_->n_generated() > 0) {
        reply.set_prompt_ms(Ms(session_->first_token - session_->started).count());
        reply.set_decode_ms(Ms(session_->last_token - session_->first_token).count());
        reply.set_n_decode_steps(session_->n_generated() - 1);
      }
    }
    Queue(std::move(reply));
    if (e.done) Complete(grpc::Status::OK);
  }
  void Queue(v1::GenerateReply reply) {
    if (finished_) return;
    replies_.push_back(std::move(reply));
    if (replies_.size() == 1) StartWrite(&replies_.front());
  }
  // Finishes once every queued reply is written.
  void Complete(grpc::Status status) {
    final_status_ = std::move(status);
    if (replies_.empty()) FinishOnce(*final_status_);
  }
  void Cancel() {
    if (session_ && !ended_) {
      ended_ = true;
      c_.CancelSession(session_->id());
    }
    // A write in flight keeps its message in replies_ until OnWriteDone.
    FinishOnce(grpc::Status::CANCELLED);
  }
  void FinishOnce(const grpc::Status& status) {
    if (finished_) return;
    finished_ = true;
    Finish(status);
  }

  Coordinator& c_;
  std::shared_ptr<Mailbox> mailbox_;
  std::shared_ptr<Session> session_;
  // Guarded by the mailbox lock.
  std::deque<v1::GenerateReply> replies_;
  std::optional<grpc::Status> final_status_;
  bool ended_ = false;     // the session is over (done, failed or cancelled)
  bool finished_ = false;  // Finish was called
};

}  // namespace

grpc::ServerReadReactor<v1::StepResult>* CoordinatorServiceImpl::Results(
    grpc::CallbackServerContext* context, v1::ResultsAck*) {
  return new ResultsReactor(c_, context->peer(), PeerIdentity(*context),
                            AuthorizePeer(*context, "Results", kRoleNode));
}

grpc::ServerWriteReactor<v1::GenerateReply>* ClientServiceImpl::Generate(
    grpc::CallbackServerContext* context, const v1::GenerateRequest* request) {
  return new GenerateReactor(c_, *request, AuthorizePeer(*context, "Generate", kRoleAnyMember));
}

}  // namespace tandem
