#include "api/generation.h"

namespace tandem::api {

absl::StatusOr<std::unique_ptr<Generation>> Generation::Start(
    Coordinator& c, GenerationRequest request, std::vector<std::string> stop_strings) {
  std::unique_ptr<Generation> g(new Generation(c, std::move(stop_strings)));
  g->n_prompt_ = static_cast<int64_t>(request.prompt_ids.size());
  auto session = c.StartSession(std::move(request), [inbox = g->inbox_](const SessionEvent& e) {
    {
      std::lock_guard<std::mutex> lock(inbox->mutex);
      inbox->events.push_back(e);
    }
    inbox->cv.notify_one();
  });
  if (!session.ok()) return session.status();
  g->session_ = *std::move(session);
  return g;
}

Generation::~Generation() { End(); }

void Generation::End() {
  if (session_ && !session_over_) c_.CancelSession(session_->id());
  session_over_ = true;
}

bool Generation::WaitForEvent(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(inbox_->mutex);
  return inbox_->cv.wait_for(lock, timeout, [&] { return !inbox_->events.empty(); });
}

absl::StatusOr<Delta> Generation::Next() {
  SessionEvent e;
  {
    std::unique_lock<std::mutex> lock(inbox_->mutex);
    inbox_->cv.wait(lock, [&] { return !inbox_->events.empty(); });
    e = std::move(inbox_->events.front());
    inbox_->events.pop_front();
  }
  Delta d;
  if (!e.error.ok()) {
    session_over_ = finished_ = true;
    return e.error;
  }
  if (e.has_token) {
    ++n_completion_;
    d.tokens.push_back({e.token, e.logprob, std::move(e.top_logprobs)});
    d.text = text_.Feed(c_.tokenizer().TokenToPiece(e.token, /*render_special=*/false));
    if (text_.stopped()) {
      End();  // a stop string: the session may still run; free it now
      d.finished = finished_ = true;
      d.finish_reason = "stop";
      return d;
    }
  }
  if (e.done) {
    session_over_ = d.finished = finished_ = true;
    d.text += text_.Finish();
    // The coordinator no longer touches a finished session's state.
    d.finish_reason = session_->state().stopped_by_token() ? "stop" : "length";
  }
  return d;
}

}  // namespace tandem::api
