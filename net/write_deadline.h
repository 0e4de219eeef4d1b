// A deadline for one write on a long-lived gRPC stream: the synchronous API has deadlines
// only per call, and a stream lives for a whole plan. Arm before a write, disarm after it;
// a write that outlasts its deadline has its stream cancelled, so the write returns false
// instead of blocking its thread for as long as the peer stays hung.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace tandem {

class WriteDeadline {
 public:
  WriteDeadline();
  ~WriteDeadline();
  WriteDeadline(const WriteDeadline&) = delete;
  WriteDeadline& operator=(const WriteDeadline&) = delete;

  // Cancels `context` `timeout` from now unless disarmed first. One write at a time.
  void Arm(grpc::ClientContext* context, std::chrono::milliseconds timeout);
  // True when the deadline passed and the stream was cancelled. After it returns the
  // context is no longer touched.
  bool Disarm();

 private:
  void Loop();

  std::mutex mutex_;
  std::condition_variable cv_;
  grpc::ClientContext* context_ = nullptr;
  std::chrono::steady_clock::time_point deadline_;
  bool fired_ = false;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace tandem
