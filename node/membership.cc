#include "node/membership.h"

#include <algorithm>
#include <cstdio>
#include <random>

#include "absl/strings/str_cat.h"

namespace tandem {

std::string NewBootId() {
  std::random_device rd;
  std::string id;
  for (int i = 0; i < 4; ++i) absl::StrAppend(&id, absl::Hex(rd(), absl::kZeroPad8));
  return id;
}

Membership::Membership(std::shared_ptr<CoordinatorClient> client, v1::RegisterRequest request,
                       std::function<State()> state, MembershipOptions options,
                       ReplyHandler on_reply)
    : client_(std::move(client)),
      request_(std::move(request)),
      state_(std::move(state)),
      options_(options),
      on_reply_(std::move(on_reply)) {}

Membership::~Membership() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  if (heartbeat_.joinable()) heartbeat_.join();
}

std::string Membership::node_id() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return node_id_;
}

absl::StatusOr<v1::RegisterResponse> Membership::RegisterWithRetry() {
  const auto deadline = std::chrono::steady_clock::now() + options_.register_patience;
  for (;;) {
    absl::StatusOr<v1::RegisterResponse> r = client_->Register(request_, options_.call_deadline);
    if (r.ok()) {
      if (!r->accepted()) {
        // The reason never names the coordinator's files, so say which one this node holds.
        return absl::FailedPreconditionError(
            absl::StrCat("the coordinator refused this node: ", r->reason(),
                         " (this node's model: ", request_.model_path(), ")"));
      }
      std::lock_guard<std::mutex> lock(mutex_);
      node_id_ = r->node_id();
      return r;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      return absl::UnavailableError(
          absl::StrCat("cannot reach the coordinator: ", r.status().message()));
    }
    std::unique_lock<std::mutex> lock(mutex_);
    if (cv_.wait_for(lock, options_.retry_interval, [&] { return stop_; })) {
      return absl::CancelledError("stopping");
    }
  }
}

absl::StatusOr<v1::RegisterResponse> Membership::Join() {
  absl::StatusOr<v1::RegisterResponse> r = RegisterWithRetry();
  if (!r.ok()) return r;
  // A floor on the interval: a coordinator cannot make nodes spin.
  const auto interval =
      std::chrono::milliseconds(std::max<uint32_t>(100, r->heartbeat_interval_ms()));
  heartbeat_ = std::thread([this, interval] { HeartbeatLoop(interval); });
  return r;
}

bool Membership::Drain(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  draining_ = true;
  beat_now_ = true;
  cv_.notify_all();
  return cv_.wait_for(lock, timeout, [&] { return drained_ || stop_; }) && drained_;
}

void Membership::HeartbeatLoop(std::chrono::milliseconds interval) {
  for (;;) {
    bool draining;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      // While draining, beat often: the node exits as soon as the plan lets it go.
      const auto wait =
          draining_ ? std::min<std::chrono::milliseconds>(interval, std::chrono::milliseconds(100))
                    : interval;
      if (cv_.wait_for(lock, wait, [&] { return stop_ || beat_now_; }) && stop_) return;
      beat_now_ = false;
      draining = draining_;
    }
    const State state = state_();
    v1::HeartbeatRequest hb;
    hb.set_node_id(node_id());
    hb.set_boot_id(request_.boot_id());
    hb.set_pending_frames(state.pending_frames);
    hb.set_stalled_ms(state.stalled_ms);
    hb.set_draining(draining);
    hb.set_plan_epoch(state.plan_epoch);
    hb.set_serving(state.serving);
    *hb.mutable_stage() = state.stage;
    hb.set_layers_loaded(state.layers_loaded);
    hb.set_layers_to_load(state.layers_to_load);
    hb.set_sessions(state.sessions);
    if (state.fetch) *hb.mutable_fetch() = *state.fetch;
    absl::StatusOr<v1::HeartbeatResponse> r = client_->Heartbeat(hb, options_.call_deadline);
    if (r.ok() && r->known() && on_reply_) on_reply_(*r, hb.node_id());
    if (draining && (!r.ok() || !r->known() || !r->in_plan())) {
      // Out of the plan, forgotten, or no coordinator to drain for (its sessions went
      // with it): nothing here is needed any more.
      std::lock_guard<std::mutex> lock(mutex_);
      drained_ = true;
      cv_.notify_all();
      continue;
    }
    if (r.ok() && !r->known()) {
      absl::StatusOr<v1::RegisterResponse> again = RegisterWithRetry();
      if (!again.ok() && again.status().code() != absl::StatusCode::kCancelled) {
        std::fprintf(stderr, "tandem node: registering again failed: %s\n",
                     std::string(again.status().message()).c_str());
      }
    }
  }
}

}  // namespace tandem
