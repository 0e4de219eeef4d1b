#include "net/results_client.h"

#include "absl/strings/str_cat.h"
#include "net/link_security.h"
#include "security/pki.h"

namespace tandem {

ResultsClient::ResultsClient(std::string coordinator_address,
                             std::chrono::milliseconds write_timeout)
    : address_(std::move(coordinator_address)),
      write_timeout_(write_timeout),
      channel_(MakeChannel(address_, security::kCoordinatorIdentity)),
      stub_(v1::Coordinator::NewStub(channel_)) {}

ResultsClient::~ResultsClient() {
  std::lock_guard<std::mutex> lock(mutex_);
  CloseLocked();
}

void ResultsClient::CloseLocked() {
  if (!writer_) return;
  context_->TryCancel();  // results not yet taken are lost either way
  writer_->WritesDone();
  writer_->Finish();
  writer_.reset();
  context_.reset();
}

absl::Status ResultsClient::Send(const v1::StepResult& result) {
  std::lock_guard<std::mutex> lock(mutex_);
  // Just failed: the coordinator is down or restarting, and its sessions with it. Do not
  // hold the worker for every result still on its way.
  if (std::chrono::steady_clock::now() < quiet_until_) {
    return absl::UnavailableError(
        absl::StrCat("the coordinator at ", address_, " is unreachable: a result was lost"));
  }
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (!writer_) {
      // A coordinator that restarts gets a fresh connection at once, not after gRPC's
      // reconnect backoff.
      grpc::experimental::ChannelResetConnectionBackoff(channel_.get());
      context_ = std::make_unique<grpc::ClientContext>();
      context_->set_wait_for_ready(true);
      deadline_.Arm(context_.get(), write_timeout_);
      writer_ = stub_->Results(context_.get(), &ack_);
      deadline_.Disarm();
    }
    deadline_.Arm(context_.get(), write_timeout_);
    const bool written = writer_->Write(result);
    deadline_.Disarm();
    if (written) return absl::OkStatus();
    context_->TryCancel();
    writer_->Finish();
    writer_.reset();
  }
  quiet_until_ = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  return absl::UnavailableError(
      absl::StrCat("the coordinator at ", address_, " is unreachable: a result was lost"));
}

}  // namespace tandem
