#include "net/write_deadline.h"

namespace tandem {

WriteDeadline::WriteDeadline() : thread_([this] { Loop(); }) {}

WriteDeadline::~WriteDeadline() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void WriteDeadline::Arm(grpc::ClientContext* context, std::chrono::milliseconds timeout) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    context_ = context;
    deadline_ = std::chrono::steady_clock::now() + timeout;
    fired_ = false;
  }
  cv_.notify_all();
}

bool WriteDeadline::Disarm() {
  std::lock_guard<std::mutex> lock(mutex_);
  context_ = nullptr;
  return fired_;
}

void WriteDeadline::Loop() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stop_) {
    if (context_ == nullptr) {
      cv_.wait(lock);
      continue;
    }
    if (std::chrono::steady_clock::now() >= deadline_) {
      context_->TryCancel();
      context_ = nullptr;
      fired_ = true;
      continue;
    }
    cv_.wait_until(lock, deadline_);
  }
}

}  // namespace tandem
