// A node's membership in a cluster: registration (retried while the coordinator starts;
// a refusal is final), heartbeats carrying the boot id, epoch, serving state and progress,
// registering again when the coordinator no longer knows the node (it restarted, or
// declared the node dead), and draining before the node stops.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "net/coordinator_client.h"
#include "tandem.pb.h"

namespace tandem {

struct MembershipOptions {
  // How long registration keeps trying to reach the coordinator.
  std::chrono::milliseconds register_patience{60000};
  std::chrono::milliseconds call_deadline{5000};
  std::chrono::milliseconds retry_interval{200};
};

class Membership {
 public:
  // What the node reports in each heartbeat.
  struct State {
    uint64_t plan_epoch = 0;
    bool serving = false;
    v1::StageCounters stage;     // cumulative
    uint32_t layers_loaded = 0;  // while a shard loads, of layers_to_load
    uint32_t layers_to_load = 0;
    uint32_t sessions = 0;  // sessions whose KV cache the node holds
    uint32_t pending_frames = 0;
    uint32_t stalled_ms = 0;
    // A node without the model file: its weight transfer (absent with a model file).
    std::optional<v1::FetchProgress> fetch;
  };
  // Told the coordinator's answer to each heartbeat that it knew, with this node's id.
  using ReplyHandler = std::function<void(const v1::HeartbeatResponse&, const std::string&)>;
  // `request` carries the process's boot id (NewBootId()).
  Membership(std::shared_ptr<CoordinatorClient> client, v1::RegisterRequest request,
             std::function<State()> state, MembershipOptions options = {},
             ReplyHandler on_reply = nullptr);
  ~Membership();  // stops heartbeats
  Membership(const Membership&) = delete;
  Membership& operator=(const Membership&) = delete;

  // Registers (blocking); on success starts heartbeats and returns the response.
  absl::StatusOr<v1::RegisterResponse> Join();
  std::string node_id() const;
  // Tells the coordinator the node is stopping and waits until its plan no longer holds
  // the node (the layers moved, its sessions replay elsewhere), or `timeout`. True when
  // drained. Heartbeats go on until destruction.
  bool Drain(std::chrono::milliseconds timeout);

 private:
  absl::StatusOr<v1::RegisterResponse> RegisterWithRetry();
  void HeartbeatLoop(std::chrono::milliseconds interval);

  std::shared_ptr<CoordinatorClient> client_;
  const v1::RegisterRequest request_;
  std::function<State()> state_;
  const MembershipOptions options_;
  const ReplyHandler on_reply_;

  mutable std::mutex mutex_;  // guards what follows
  std::condition_variable cv_;
  std::string node_id_;
  bool stop_ = false;
  bool draining_ = false;
  bool beat_now_ = false;
  bool drained_ = false;
  std::thread heartbeat_;
};

// 128 random bits in hex: a node process's identity across its registrations.
std::string NewBootId();

}  // namespace tandem
