// One generation request as the coordinator tracks it: the token history (the source of
// truth: a stage that loses its KV cache is rebuilt from it), what is still to come, and
// the events its client is waiting for.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "node/sampler.h"

namespace tandem {

struct SessionEvent {
  bool has_token = false;
  int32_t token = 0;
  bool done = false;
  absl::Status error;

  static SessionEvent Error(absl::Status status) {
    SessionEvent e;
    e.error = std::move(status);
    return e;
  }
  static SessionEvent Done() {
    SessionEvent e;
    e.done = true;
    return e;
  }
};

class Session {
 public:
  Session(uint64_t id, std::vector<int32_t> prompt, int32_t n_predict, SamplingParams sampling,
          bool stop_at_eos)
      : id_(id), history_(std::move(prompt)), n_prompt_(static_cast<int64_t>(history_.size())),
        n_predict_(n_predict), sampling_(sampling), stop_at_eos_(stop_at_eos) {}

  uint64_t id() const { return id_; }
  const SamplingParams& sampling() const { return sampling_; }
  bool stop_at_eos() const { return stop_at_eos_; }
  int64_t n_prompt() const { return n_prompt_; }
  int32_t n_predict() const { return n_predict_; }

  // Guarded by the coordinator's session lock.
  std::vector<int32_t>& history() { return history_; }
  const std::vector<int32_t>& history() const { return history_; }
  int64_t n_generated() const { return static_cast<int64_t>(history_.size()) - n_prompt_; }
  std::chrono::steady_clock::time_point started, first_token, last_token;
  uint64_t plan_epoch = 0;
  bool finished = false;

  // The client's side.
  void Push(SessionEvent event) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      events_.push_back(std::move(event));
    }
    cv_.notify_one();
  }
  // Waits up to `timeout`; nullopt when nothing arrived.
  std::optional<SessionEvent> Pop(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mutex_);
    if (!cv_.wait_for(lock, timeout, [&] { return !events_.empty(); })) return std::nullopt;
    SessionEvent e = std::move(events_.front());
    events_.pop_front();
    return e;
  }

 private:
  const uint64_t id_;
  std::vector<int32_t> history_;
  const int64_t n_prompt_;
  const int32_t n_predict_;
  const SamplingParams sampling_;
  const bool stop_at_eos_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<SessionEvent> events_;
};

}  // namespace tandem
