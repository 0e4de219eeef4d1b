// The bridge from an HTTP request to a coordinator session: starts the session in process
// (no gRPC to itself), receives its events on coordinator threads into an inbox, and hands
// them to the request's thread as text deltas (stop strings cut, UTF-8 whole) with the
// tokens behind them. Destroying it cancels a session still running, which frees its KV
// cache on every stage: that is how a client that went away releases its resources.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "api/text_stream.h"
#include "coordinator/coordinator.h"

namespace tandem::api {

// One generated token, for logprobs.
struct GeneratedToken {
  TokenId token = 0;
  float logprob = 0;
  std::vector<TokenLogprob> top_logprobs;
};

struct Delta {
  std::string text;                    // newly visible text (may be empty)
  std::vector<GeneratedToken> tokens;  // the tokens this step produced
  bool finished = false;
  std::string finish_reason;  // when finished: "stop" (stop token or string) or "length"
};

class Generation {
 public:
  static absl::StatusOr<std::unique_ptr<Generation>> Start(Coordinator& coordinator,
                                                           GenerationRequest request,
                                                           std::vector<std::string> stop_strings);
  ~Generation();
  Generation(const Generation&) = delete;
  Generation& operator=(const Generation&) = delete;

  // Blocks for the next session event. An error when the session failed; after a finished
  // delta, no more calls.
  absl::StatusOr<Delta> Next();
  // Waits up to `timeout` for the next event; true when Next() will not block.
  bool WaitForEvent(std::chrono::milliseconds timeout);
  bool finished() const { return finished_; }
  int64_t prompt_tokens() const { return n_prompt_; }
  int64_t completion_tokens() const { return n_completion_; }

 private:
  struct Inbox {
    std::mutex mutex;
    std::condition_variable cv;
    std::deque<SessionEvent> events;
  };
  Generation(Coordinator& c, std::vector<std::string> stop_strings)
      : c_(c), text_(std::move(stop_strings)), inbox_(std::make_shared<Inbox>()) {}
  void End();  // cancels the session if it still runs

  Coordinator& c_;
  TextStream text_;
  std::shared_ptr<Inbox> inbox_;
  std::shared_ptr<Session> session_;
  int64_t n_prompt_ = 0;
  int64_t n_completion_ = 0;
  bool finished_ = false;
  bool session_over_ = false;  // done, failed or cancelled
};

}  // namespace tandem::api
