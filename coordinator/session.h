// One generation request as the coordinator tracks it: its GenerationState (the token
// history is the source of truth: a stage that loses its KV cache is rebuilt from it), the
// plan epoch it runs under, and the listener its client waits on.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "base/generation.h"

namespace tandem {

struct SessionEvent {
  bool has_token = false;
  TokenId token = 0;
  // When the request's sampling asked for them: `token`'s log-probability and the most
  // likely alternatives, as the last stage computed them.
  float logprob = 0;
  std::vector<TokenLogprob> top_logprobs;
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
  // Called for each event, from coordinator threads and never under its locks. After an
  // event with `done` or an error, no more come.
  using Listener = std::function<void(const SessionEvent&)>;

  Session(uint64_t id, GenerationRequest request, Listener listener)
      : id_(id), state_(std::move(request)), listener_(std::move(listener)) {}

  uint64_t id() const { return id_; }
  // Guarded by the coordinator's lock.
  GenerationState& state() { return state_; }
  const GenerationState& state() const { return state_; }
  int64_t n_generated() const { return state_.n_generated(); }

  std::chrono::steady_clock::time_point started, first_token, last_token, last_progress;
  uint64_t plan_epoch = 0;  // 0: waiting for the first plan

  void Notify(const SessionEvent& event) const {
    if (listener_) listener_(event);
  }

 private:
  const uint64_t id_;
  GenerationState state_;
  const Listener listener_;
};

}  // namespace tandem
