#include "coordinator/telemetry.h"

#include <algorithm>
#include <cmath>
#include <iterator>

#include "absl/strings/str_cat.h"
#include "telemetry/exposition.h"

namespace tandem {
namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;

// Keeps the token-rate window bounded whatever the load: beyond this many tokens in the
// window the rate is counted over a shorter stretch.
constexpr size_t kMaxTokenTimes = 1 << 16;
// Moving-average weights of the newest sample.
constexpr double kPerTokenWeight = 0.2;
constexpr double kFirstTokenWeight = 0.3;

double Ms(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

double Average(double average, double sample, double weight, bool first) {
  return first ? sample : average + weight * (sample - average);
}

bool Sane(double v) { return std::isfinite(v) && v >= 0; }

}  // namespace

absl::string_view NodeStateName(NodeState state) {
  switch (state) {
    case NodeState::kServing:
      return "serving";
    case NodeState::kJoining:
      return "joining";
    case NodeState::kSuspect:
      return "suspect";
    case NodeState::kDead:
      return "dead";
    case NodeState::kDraining:
      return "draining";
    case NodeState::kFenced:
      return "fenced";
    case NodeState::kStandby:
      return "standby";
  }
  return "dead";
}

ClusterTelemetry::ClusterTelemetry(TelemetryOptions options, Clock now)
    : options_(std::move(options)),
      now_(std::move(now)),
      events_(options_.event_capacity, options_.wall_ms),
      registry_(std::make_shared<prometheus::Registry>()),
      tokens_generated_(BuildCounter()
                            .Name("tandem_tokens_generated_total")
                            .Help("Tokens generated for clients")
                            .Register(*registry_)
                            .Add({})),
      time_to_first_token_(
          BuildHistogram()
              .Name("tandem_time_to_first_token_seconds")
              .Help("From a request's arrival to its first generated token")
              .Register(*registry_)
              .Add({}, prometheus::Histogram::BucketBoundaries{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                                               2.5, 5, 10, 30})),
      time_per_token_(
          BuildHistogram()
              .Name("tandem_time_per_token_seconds")
              .Help("Between a session's consecutive generated tokens")
              .Register(*registry_)
              .Add({}, prometheus::Histogram::BucketBoundaries{0.001, 0.0025, 0.005, 0.01, 0.025,
                                                               0.05, 0.1, 0.25, 0.5, 1, 2.5})),
      sessions_(BuildGauge()
                    .Name("tandem_sessions")
                    .Help("Sessions by state: active (on a plan) or queued (waiting for one)")
                    .Register(*registry_)),
      nodes_(BuildGauge()
                 .Name("tandem_nodes")
                 .Help("Registered nodes by state (dead ones for a while after they die)")
                 .Register(*registry_)),
      plan_epoch_(BuildGauge()
                      .Name("tandem_plan_epoch")
                      .Help("The epoch of the plan in force")
                      .Register(*registry_)
                      .Add({})),
      replans_(BuildCounter()
                   .Name("tandem_replans_total")
                   .Help("Plans made after the first (a node joined or died)")
                   .Register(*registry_)
                   .Add({})),
      recoveries_(BuildCounter()
                      .Name("tandem_recoveries_total")
                      .Help("Sessions in flight replayed onto a new plan")
                      .Register(*registry_)
                      .Add({})),
      fenced_(BuildCounter()
                  .Name("tandem_fenced_nodes_total")
                  .Help("Nodes left out of plans for holding sessions up (hung, cut off)")
                  .Register(*registry_)
                  .Add({})),
      refused_(BuildCounter()
                   .Name("tandem_refused_requests_total")
                   .Help("Requests refused, by reason")
                   .Register(*registry_)),
      stage_compute_(BuildCounter()
                         .Name("tandem_stage_compute_seconds_total")
                         .Help("Time a node's stage spent running batches, from its heartbeats")
                         .Register(*registry_)),
      stage_queue_(BuildCounter()
                       .Name("tandem_stage_queue_seconds_total")
                       .Help("Time frames waited at a node's stage before their batch")
                       .Register(*registry_)),
      stage_tokens_(BuildCounter()
                        .Name("tandem_stage_tokens_total")
                        .Help("Token positions a node's stage ran")
                        .Register(*registry_)),
      stage_frames_(BuildCounter()
                        .Name("tandem_stage_frames_total")
                        .Help("Activation frames a node's stage ran")
                        .Register(*registry_)),
      hop_bytes_(BuildCounter()
                     .Name("tandem_hop_bytes_total")
                     .Help("Bytes a node sent to its next stage")
                     .Register(*registry_)),
      hop_latency_(BuildGauge()
                       .Name("tandem_hop_latency_seconds")
                       .Help("One-way latency from a node to its next stage (half a Ping)")
                       .Register(*registry_)) {
  for (NodeState s : kNodeStates) nodes_.Add({{"state", std::string(NodeStateName(s))}}).Set(0);
  sessions_.Add({{"state", "active"}}).Set(0);
  sessions_.Add({{"state", "queued"}}).Set(0);
}

void ClusterTelemetry::NodeJoined(const std::string& id, const std::string& address) {
  events_.Add("joined", absl::StrCat(id, " joined from ", address));
}

void ClusterTelemetry::NodeDied(const std::string& id, absl::string_view why) {
  events_.Add("died", absl::StrCat(id, " ", why));
  std::lock_guard<std::mutex> lock(mutex_);
  if (auto it = stages_.find(id); it != stages_.end()) it->second.has_last = false;
}

void ClusterTelemetry::NodeFenced(const std::string& id, absl::string_view why) {
  events_.Add("fenced", absl::StrCat(id, ": ", why));
  fenced_.Increment();
}

void ClusterTelemetry::NodeDraining(const std::string& id) {
  events_.Add("draining", absl::StrCat(id, " is draining: its layers move"));
}

void ClusterTelemetry::Forget(const std::string& id) {
  std::lock_guard<std::mutex> lock(mutex_);
  without_layers_.erase(id);
  auto it = stages_.find(id);
  if (it == stages_.end()) return;
  StageRates& r = it->second;
  if (r.compute_seconds) {
    stage_compute_.Remove(r.compute_seconds);
    stage_queue_.Remove(r.queue_seconds);
    stage_tokens_.Remove(r.tokens);
    stage_frames_.Remove(r.frames);
    hop_bytes_.Remove(r.hop_bytes);
    hop_latency_.Remove(r.hop_latency);
  }
  stages_.erase(it);
}

void ClusterTelemetry::Planned(uint64_t epoch, const ClusterPlan& plan) {
  std::string split;
  for (const StagePlan& st : plan.stages) {
    absl::StrAppend(&split, split.empty() ? "" : ", ", st.node.id, " [", st.layer_first, ", ",
                    st.layer_last, ")");
  }
  std::string message = absl::StrCat("epoch ", epoch, ": ", split);
  if (!plan.reason.empty()) absl::StrAppend(&message, " (", plan.reason, ")");
  events_.Add(epoch > 1 ? "replanned" : "planned", std::move(message));
  plan_epoch_.Set(static_cast<double>(epoch));
  if (epoch > 1) replans_.Increment();
}

void ClusterTelemetry::SetWithoutLayers(std::vector<std::string> node_ids) {
  std::lock_guard<std::mutex> lock(mutex_);
  without_layers_ = absl::flat_hash_set<std::string>(node_ids.begin(), node_ids.end());
}

void ClusterTelemetry::PlanFailed(absl::string_view reason) {
  events_.Add("plan_failed", std::string(reason));
}

void ClusterTelemetry::SessionsRecovered(uint64_t epoch, size_t sessions) {
  if (sessions == 0) return;
  events_.Add("recovered", absl::StrCat(sessions, " session(s) replayed onto epoch ", epoch));
  recoveries_.Increment(static_cast<double>(sessions));
}

void ClusterTelemetry::Refused(absl::string_view reason, absl::string_view message) {
  refused_.Add({{"reason", std::string(reason)}}).Increment();
  events_.Add("refused", absl::StrCat(reason, ": ", message));
}

void ClusterTelemetry::Token(bool first, std::chrono::steady_clock::duration since) {
  const double ms = std::max(0.0, Ms(since));
  tokens_generated_.Increment();
  (first ? time_to_first_token_ : time_per_token_).Observe(ms / 1e3);
  const auto now = now_();
  std::lock_guard<std::mutex> lock(mutex_);
  if (!any_token_) first_token_time_ = now;
  any_token_ = true;
  ++tokens_total_;
  token_times_.push_back(now);
  if (token_times_.size() > kMaxTokenTimes) token_times_.pop_front();
  if (first) {
    ttft_ms_ = Average(ttft_ms_, ms, kFirstTokenWeight, ttft_ms_ == 0);
  } else {
    ms_per_token_ = Average(ms_per_token_, ms, kPerTokenWeight, ms_per_token_ == 0);
  }
}

void ClusterTelemetry::SetSessions(int64_t active, int64_t queued) {
  sessions_.Add({{"state", "active"}}).Set(static_cast<double>(active));
  sessions_.Add({{"state", "queued"}}).Set(static_cast<double>(queued));
  std::lock_guard<std::mutex> lock(mutex_);
  sessions_active_ = active;
  sessions_queued_ = queued;
}

ClusterTelemetry::StageRates& ClusterTelemetry::RatesLocked(const std::string& id) {
  StageRates& r = stages_[id];
  if (r.compute_seconds == nullptr) {
    const prometheus::Labels labels{{"node_id", id}};
    r.compute_seconds = &stage_compute_.Add(labels);
    r.queue_seconds = &stage_queue_.Add(labels);
    r.tokens = &stage_tokens_.Add(labels);
    r.frames = &stage_frames_.Add(labels);
    r.hop_bytes = &hop_bytes_.Add(labels);
    r.hop_latency = &hop_latency_.Add(labels);
    r.has_last = true;  // a node's counters start from zero
  }
  return r;
}

void ClusterTelemetry::Heartbeat(const v1::HeartbeatRequest& request) {
  std::lock_guard<std::mutex> lock(mutex_);
  StageRates& r = RatesLocked(request.node_id());
  // Loading progress off the wire: shown only when it makes sense.
  const bool loading =
      request.layers_to_load() > 0 && request.layers_loaded() <= request.layers_to_load();
  r.layers_loaded = loading ? request.layers_loaded() : 0;
  r.layers_to_load = loading ? request.layers_to_load() : 0;
  if (!request.has_stage()) return;
  const v1::StageCounters& c = request.stage();
  // The counters come off the wire: ignore a heartbeat with impossible figures.
  if (!Sane(c.compute_ms()) || !Sane(c.queue_ms()) || !Sane(c.hop_rtt_ms())) return;
  r.hop_ms = c.hop_rtt_ms() / 2;
  r.hop_latency->Set(r.hop_ms / 1e3);
  // Counters only grow; smaller ones mean the node restarted: start again from these.
  const v1::StageCounters& p = r.last;
  const bool continues = r.has_last && c.frames() >= p.frames() && c.tokens() >= p.tokens() &&
                         c.compute_ms() >= p.compute_ms() && c.queue_ms() >= p.queue_ms() &&
                         c.bytes_sent() >= p.bytes_sent();
  if (continues) {
    const uint64_t tokens = c.tokens() - p.tokens(), frames = c.frames() - p.frames();
    const uint64_t bytes = c.bytes_sent() - p.bytes_sent();
    const double compute_ms = c.compute_ms() - p.compute_ms();
    const double queue_ms = c.queue_ms() - p.queue_ms();
    r.compute_seconds->Increment(compute_ms / 1e3);
    r.queue_seconds->Increment(queue_ms / 1e3);
    r.tokens->Increment(static_cast<double>(tokens));
    r.frames->Increment(static_cast<double>(frames));
    r.hop_bytes->Increment(static_cast<double>(bytes));
    // An idle stretch keeps the last rates: the dashboard shows what the stage last did.
    if (tokens > 0) {
      r.compute_ms_per_token = compute_ms / static_cast<double>(tokens);
      r.bytes_per_token = static_cast<double>(bytes) / static_cast<double>(tokens);
    }
    if (frames > 0) r.queue_ms_per_frame = queue_ms / static_cast<double>(frames);
  }
  r.last = c;
  r.has_last = true;
}

NodeState ClusterTelemetry::StateOf(const NodeRecord& node) const {
  if (!node.alive) return NodeState::kDead;
  const auto now = now_();
  if (now - node.last_seen > options_.suspect_after) return NodeState::kSuspect;
  if (node.draining) return NodeState::kDraining;
  if (now < node.fenced_until) return NodeState::kFenced;
  if (node.serving) return NodeState::kServing;
  std::lock_guard<std::mutex> lock(mutex_);
  return without_layers_.contains(node.id) ? NodeState::kStandby : NodeState::kJoining;
}

void ClusterTelemetry::SetNodes(const std::vector<NodeRecord>& nodes) {
  const auto now = now_();
  int64_t counts[std::size(kNodeStates)] = {};
  for (const NodeRecord& n : nodes) {
    if (!n.alive && now - n.died > options_.dead_retention) continue;
    ++counts[static_cast<int>(StateOf(n))];
  }
  for (NodeState s : kNodeStates) {
    nodes_.Add({{"state", std::string(NodeStateName(s))}})
        .Set(static_cast<double>(counts[static_cast<int>(s)]));
  }
}

double ClusterTelemetry::TokensPerSecondLocked(std::chrono::steady_clock::time_point now) {
  while (!token_times_.empty() && now - token_times_.front() > options_.rate_window) {
    token_times_.pop_front();
  }
  if (token_times_.empty()) return 0;
  // Over the window, or since the first token when that is shorter (but at least a second,
  // so one early token is not a huge rate).
  const auto span = std::clamp<std::chrono::steady_clock::duration>(
      now - first_token_time_, std::chrono::seconds(1), options_.rate_window);
  return static_cast<double>(token_times_.size()) / (Ms(span) / 1e3);
}

void ClusterTelemetry::Fill(const std::vector<NodeRecord>& nodes, v1::StatusResponse* status) {
  SetNodes(nodes);
  const auto now = now_();
  absl::flat_hash_map<std::string, const NodeRecord*> by_id;
  for (const NodeRecord& n : nodes) by_id[n.id] = &n;
  for (v1::NodeInfo& info : *status->mutable_nodes()) {
    auto it = by_id.find(info.node_id());
    info.set_state(
        std::string(NodeStateName(it == by_id.end() ? NodeState::kDead : StateOf(*it->second))));
  }
  for (const NodeRecord& n : nodes) {
    if (n.alive || now - n.died > options_.dead_retention) continue;
    v1::NodeInfo* info = status->add_dead_nodes();
    info->set_node_id(n.id);
    info->set_address(n.address);
    *info->mutable_profile() = n.profile;
    info->set_rtt_ms(n.rtt_ms);
    info->set_state(std::string(NodeStateName(NodeState::kDead)));
  }
  for (const ClusterEventRecord& e : events_.Recent()) {
    v1::ClusterEvent* out = status->add_events();
    out->set_time_ms(e.time_ms);
    out->set_kind(e.kind);
    out->set_message(e.message);
  }
  std::lock_guard<std::mutex> lock(mutex_);
  for (v1::NodeInfo& info : *status->mutable_nodes()) {
    auto it = stages_.find(info.node_id());
    if (it == stages_.end()) continue;
    info.set_layers_loaded(it->second.layers_loaded);
    info.set_layers_to_load(it->second.layers_to_load);
  }
  for (v1::PlanStage& st : *status->mutable_stages()) {
    auto it = stages_.find(st.node_id());
    if (it == stages_.end()) continue;
    st.set_measured_compute_ms(it->second.compute_ms_per_token);
    st.set_queue_ms(it->second.queue_ms_per_frame);
    st.set_hop_ms(it->second.hop_ms);
    st.set_hop_bytes_per_token(it->second.bytes_per_token);
  }
  v1::MeasuredRates* m = status->mutable_measured();
  const double tokens_per_s = TokensPerSecondLocked(now);
  m->set_tokens_per_s(tokens_per_s);
  m->set_ms_per_token(ms_per_token_);
  m->set_ttft_ms(ttft_ms_);
  m->set_sessions_active(sessions_active_);
  m->set_sessions_queued(sessions_queued_);
  m->set_tokens_generated(tokens_total_);
}

std::string ClusterTelemetry::MetricsText() const { return RenderPrometheusText(*registry_); }

}  // namespace tandem
