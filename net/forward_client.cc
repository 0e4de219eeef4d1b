#include "net/forward_client.h"

#include "absl/strings/str_cat.h"

namespace tandem {

ForwardClient::ForwardClient(std::string address, std::string identity, ReplyHandler on_reply)
    : address_(std::move(address)),
      on_reply_(std::move(on_reply)),
      channel_(MakeChannel(address_, identity)),
      stub_(v1::Node::NewStub(channel_)) {}

ForwardClient::~ForwardClient() {
  std::lock_guard<std::mutex> lock(mutex_);
  CloseLocked();
}

absl::Status ForwardClient::OpenLocked() {
  // Fail fast when the stage is down (the coordinator re-plans); a stage that is still
  // starting gets a few seconds.
  if (!channel_->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(5))) {
    return absl::UnavailableError(absl::StrCat("the stage at ", address_, " is unreachable"));
  }
  auto s = std::make_unique<Stream>();
  s->rw = stub_->Forward(&s->context);
  if (!s->rw) return absl::UnavailableError(absl::StrCat("cannot open a stream to ", address_));
  auto* rw = s->rw.get();
  s->reader = std::thread([this, rw] {
    v1::FrameReply reply;
    while (rw->Read(&reply)) {
      if (on_reply_) on_reply_(reply);
    }
  });
  stream_ = std::move(s);
  return absl::OkStatus();
}

void ForwardClient::CloseLocked() {
  if (!stream_) return;
  stream_->rw->WritesDone();
  stream_->context.TryCancel();
  stream_->reader.join();
  stream_->rw->Finish();
  stream_.reset();
}

absl::Status ForwardClient::Send(const v1::ActivationFrame& frame) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (!stream_) {
      absl::Status s = OpenLocked();
      if (!s.ok()) return s;
    }
    if (stream_->rw->Write(frame)) return absl::OkStatus();
    CloseLocked();  // broken: reopen once
  }
  return absl::UnavailableError(absl::StrCat("the stage at ", address_, " is unreachable"));
}

}  // namespace tandem
