#include "net/forward_client.h"

#include "absl/strings/str_cat.h"

namespace tandem {

ForwardClient::ForwardClient(std::string address, std::string identity, ReplyHandler on_reply,
                             std::chrono::milliseconds write_timeout)
    : address_(std::move(address)),
      on_reply_(std::move(on_reply)),
      write_timeout_(write_timeout),
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
  {
    std::lock_guard<std::mutex> lock(abort_mutex_);
    if (aborted_) return absl::UnavailableError(absl::StrCat("the stream to ", address_, " ended"));
    live_context_ = &s->context;
  }
  // Opening sends the stream's headers: under the write deadline too.
  deadline_.Arm(&s->context, write_timeout_);
  s->rw = stub_->Forward(&s->context);
  deadline_.Disarm();
  if (!s->rw) {
    std::lock_guard<std::mutex> lock(abort_mutex_);
    live_context_ = nullptr;
    return absl::UnavailableError(absl::StrCat("cannot open a stream to ", address_));
  }
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
  // A broken stream is cancelled first: its half-close may never be taken.
  if (!broken_.empty()) stream_->context.TryCancel();
  stream_->rw->WritesDone();
  stream_->context.TryCancel();
  stream_->reader.join();
  stream_->rw->Finish();
  {
    std::lock_guard<std::mutex> lock(abort_mutex_);
    live_context_ = nullptr;
  }
  stream_.reset();
}

void ForwardClient::Abort() {
  std::lock_guard<std::mutex> lock(abort_mutex_);
  aborted_ = true;
  if (live_context_) live_context_->TryCancel();
}

absl::Status ForwardClient::Send(const v1::ActivationFrame& frame) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!broken_.empty()) return absl::UnavailableError(broken_);
  if (!stream_) {
    absl::Status s = OpenLocked();
    if (!s.ok()) {
      broken_ = std::string(s.message());
      return s;
    }
  }
  deadline_.Arm(&stream_->context, write_timeout_);
  const bool written = stream_->rw->Write(frame);
  const bool late = deadline_.Disarm();
  if (written) return absl::OkStatus();
  broken_ = late ? absl::StrCat("a write to the stage at ", address_, " took longer than ",
                                write_timeout_.count(), " ms")
                 : absl::StrCat("the stage at ", address_, " is unreachable");
  CloseLocked();
  return absl::UnavailableError(broken_);
}

}  // namespace tandem
