#include "net/results_client.h"

#include "absl/strings/str_cat.h"
#include "net/link_security.h"
#include "security/pki.h"

namespace tandem {

ResultsClient::ResultsClient(std::string coordinator_address)
    : address_(std::move(coordinator_address)),
      stub_(v1::Coordinator::NewStub(MakeChannel(address_, security::kCoordinatorIdentity))) {}

ResultsClient::~ResultsClient() {
  std::lock_guard<std::mutex> lock(mutex_);
  CloseLocked();
}

void ResultsClient::CloseLocked() {
  if (!writer_) return;
  writer_->WritesDone();
  writer_->Finish();
  writer_.reset();
  context_.reset();
}

absl::Status ResultsClient::Send(const v1::StepResult& result) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (!writer_) {
      context_ = std::make_unique<grpc::ClientContext>();
      context_->set_wait_for_ready(true);
      writer_ = stub_->Results(context_.get(), &ack_);
    }
    if (writer_->Write(result)) return absl::OkStatus();
    context_->TryCancel();
    writer_->Finish();
    writer_.reset();
  }
  return absl::UnavailableError(absl::StrCat("the coordinator at ", address_, " is unreachable"));
}

}  // namespace tandem
