// What the coordinator measures about its cluster: recent events (joins, deaths, re-plans,
// recoveries, refused requests), Prometheus counters and histograms (tokens, time to first
// token, time per token, sessions, nodes by state, per-stage compute and queue time, per-hop
// latency and bytes), and the rates the dashboard and `tandem status` show. The
// coordinator calls one method per thing that happens; Fill() puts it all in a Status.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/string_view.h"
#include "coordinator/planning.h"
#include "coordinator/registry.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "tandem.pb.h"
#include "telemetry/event_log.h"

namespace tandem {

// Fenced: left out of plans for a backoff (it held sessions up); draining: stopping.
// Joining: registered, not yet serving the plan it is in (or not yet planned); standby:
// alive and healthy, but the plan in force gives it no layers.
enum class NodeState { kServing, kJoining, kSuspect, kDead, kDraining, kFenced, kStandby };
inline constexpr NodeState kNodeStates[] = {
    NodeState::kServing,  NodeState::kJoining, NodeState::kSuspect, NodeState::kDead,
    NodeState::kDraining, NodeState::kFenced,  NodeState::kStandby};
absl::string_view NodeStateName(NodeState state);

struct TelemetryOptions {
  // A node silent for longer than this (but not yet expired) is suspect.
  std::chrono::milliseconds suspect_after{1500};
  // A dead node stays listed this long, so the dashboard shows the death.
  std::chrono::milliseconds dead_retention{std::chrono::minutes(5)};
  // tokens_per_s counts the tokens of this last stretch.
  std::chrono::milliseconds rate_window{5000};
  size_t event_capacity = 200;
  EventLog::WallClockMs wall_ms = EventLog::SystemWallClockMs;
};

class ClusterTelemetry {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;
  ClusterTelemetry(TelemetryOptions options, Clock now);
  ClusterTelemetry(const ClusterTelemetry&) = delete;
  ClusterTelemetry& operator=(const ClusterTelemetry&) = delete;

  // What happens in the cluster.
  void NodeJoined(const std::string& id, const std::string& address);
  void NodeDied(const std::string& id, absl::string_view why = "stopped answering");
  // Left out of plans for a backoff (it held sessions up), and why.
  void NodeFenced(const std::string& id, absl::string_view why);
  void NodeDraining(const std::string& id);
  // A dead node's record was pruned: its per-node series go too.
  void Forget(const std::string& id);
  void Planned(uint64_t epoch, const ClusterPlan& plan);
  // The nodes the planner's latest decision (a plan made, kept, or one that failed beside
  // the plan in force) gives no layers: while they do not serve they are on standby.
  void SetWithoutLayers(std::vector<std::string> node_ids);
  void PlanFailed(absl::string_view reason);
  // Sessions in flight replayed onto a new plan after a node was lost.
  void SessionsRecovered(uint64_t epoch, size_t sessions);
  // A refused request; `reason` is a short label (invalid_request, not_ready, stalled,
  // unauthorized, overloaded, ...), `message` what the client was told.
  void Refused(absl::string_view reason, absl::string_view message);
  // A token for a session: `first` with the time since the request, else since its last token.
  void Token(bool first, std::chrono::steady_clock::duration since);
  void SetSessions(int64_t active, int64_t queued);
  // A node's heartbeat with its cumulative stage counters.
  void Heartbeat(const v1::HeartbeatRequest& request);
  // Sets the node-state gauges from the registry's records.
  void SetNodes(const std::vector<NodeRecord>& nodes);

  // Adds the measurements to a Status the coordinator filled with its plan and live nodes:
  // node states, recently dead nodes, per-stage measured figures, rates and events.
  void Fill(const std::vector<NodeRecord>& nodes, v1::StatusResponse* status);

  NodeState StateOf(const NodeRecord& node) const;
  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }
  // The Prometheus text of every metric (for /metrics).
  std::string MetricsText() const;
  std::vector<ClusterEventRecord> Events() const { return events_.Recent(); }

 private:
  // Per node: the last heartbeat's counters and the rates derived from the difference.
  struct StageRates {
    v1::StageCounters last;
    bool has_last = false;
    double compute_ms_per_token = 0;
    double queue_ms_per_frame = 0;
    double bytes_per_token = 0;
    double hop_ms = 0;
    uint32_t layers_loaded = 0;
    uint32_t layers_to_load = 0;
    prometheus::Counter* compute_seconds = nullptr;
    prometheus::Counter* queue_seconds = nullptr;
    prometheus::Counter* tokens = nullptr;
    prometheus::Counter* frames = nullptr;
    prometheus::Counter* hop_bytes = nullptr;
    prometheus::Gauge* hop_latency = nullptr;
  };
  StageRates& RatesLocked(const std::string& node_id);
  double TokensPerSecondLocked(std::chrono::steady_clock::time_point now);

  const TelemetryOptions options_;
  const Clock now_;
  EventLog events_;
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Counter& tokens_generated_;
  prometheus::Histogram& time_to_first_token_;
  prometheus::Histogram& time_per_token_;
  prometheus::Family<prometheus::Gauge>& sessions_;
  prometheus::Family<prometheus::Gauge>& nodes_;
  prometheus::Gauge& plan_epoch_;
  prometheus::Counter& replans_;
  prometheus::Counter& recoveries_;
  prometheus::Counter& fenced_;
  prometheus::Family<prometheus::Counter>& refused_;
  prometheus::Family<prometheus::Counter>& stage_compute_;
  prometheus::Family<prometheus::Counter>& stage_queue_;
  prometheus::Family<prometheus::Counter>& stage_tokens_;
  prometheus::Family<prometheus::Counter>& stage_frames_;
  prometheus::Family<prometheus::Counter>& hop_bytes_;
  prometheus::Family<prometheus::Gauge>& hop_latency_;

  mutable std::mutex mutex_;  // guards what follows
  absl::flat_hash_map<std::string, StageRates> stages_;
  absl::flat_hash_set<std::string> without_layers_;
  std::deque<std::chrono::steady_clock::time_point> token_times_;  // within rate_window
  std::chrono::steady_clock::time_point first_token_time_{};
  bool any_token_ = false;
  uint64_t tokens_total_ = 0;
  double ms_per_token_ = 0;  // moving averages
  double ttft_ms_ = 0;
  int64_t sessions_active_ = 0;
  int64_t sessions_queued_ = 0;
};

}  // namespace tandem
