#include "coordinator/coordinator.h"

#include <algorithm>
#include <cstdio>
#include <new>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "coordinator/model_profile.h"
#include "model/fingerprint.h"
#include "net/convert.h"
#include "net/frames.h"
#include "net/link_security.h"

namespace tandem {

Coordinator::Coordinator(CoordinatorOptions options, std::unique_ptr<NodeLink> link)
    : options_(std::move(options)),
      link_(std::move(link)),
      registry_({.timeout = options_.node_timeout}, options_.now),
      telemetry_({.suspect_after = options_.heartbeat_interval * 3}, options_.now) {}

absl::StatusOr<std::unique_ptr<Coordinator>> Coordinator::Create(CoordinatorOptions options,
                                                                 std::unique_ptr<NodeLink> link) {
  std::unique_ptr<Coordinator> c(new Coordinator(std::move(options), std::move(link)));
  TANDEM_ASSIGN_OR_RETURN(std::unique_ptr<GgufFile> file, GgufFile::Open(c->options_.model_path));
  c->file_ = std::move(file);
  TANDEM_ASSIGN_OR_RETURN(c->hparams_, ReadHparams(*c->file_));
  TANDEM_ASSIGN_OR_RETURN(c->tokenizer_, Tokenizer::FromGguf(*c->file_));
  TANDEM_ASSIGN_OR_RETURN(c->profile_, BuildModelProfile(*c->file_, c->hparams_,
                                                         WireDtypeSize(c->options_.wire_dtype)));
  c->fingerprint_ = ModelFingerprint(*c->file_);
  c->n_ctx_ = c->options_.n_ctx > 0 ? c->options_.n_ctx : c->hparams_.n_ctx_train;
  if (absl::Status s = ValidateContextLength(
          c->n_ctx_, c->options_.n_ctx > 0 ? "--ctx-size" : "the model's context length");
      !s.ok()) {
    return c->options_.n_ctx > 0 ? s
                                 : absl::InvalidArgumentError(absl::StrCat(
                                       s.message(), "; choose a context with --ctx-size"));
  }
  if (c->options_.planning.requirements.sessions <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("--sessions must be at least 1, got ",
                                                   c->options_.planning.requirements.sessions));
  }
  // A prompt longer than this cannot fit the context whatever it tokenizes to: it is
  // refused before the tokenizer spends time on it.
  c->max_prompt_bytes_ =
      c->n_ctx_ *
      std::max<int64_t>(1, static_cast<int64_t>(c->tokenizer_->vocab().max_token_length()));
  c->options_.planning.requirements.context_length = c->n_ctx_;
  c->chunk_tokens_ = PrefillChunkTokens(c->hparams_.n_embd);
  c->sender_ = std::thread([raw = c.get()] { raw->SenderLoop(); });
  if (c->options_.background_planner) {
    c->planner_ = std::thread([raw = c.get()] {
      while (!raw->stop_) {
        std::this_thread::sleep_for(raw->options_.planner_interval);
        raw->Tick();
      }
    });
  }
  return c;
}

Coordinator::~Coordinator() {
  stop_ = true;
  if (planner_.joinable()) planner_.join();
  {
    std::lock_guard<std::mutex> lock(outbox_mutex_);
    outbox_stop_ = true;
  }
  outbox_cv_.notify_all();
  if (sender_.joinable()) sender_.join();
}

v1::RegisterResponse Coordinator::Register(const v1::RegisterRequest& r,
                                           const std::string& identity) {
  v1::RegisterResponse resp;
  if (r.protocol_version() != kProtocolVersion) {
    resp.set_reason(absl::StrCat("protocol version ", r.protocol_version(),
                                 " is not supported; the coordinator speaks ", kProtocolVersion));
    return resp;
  }
  if (r.model_fingerprint() != fingerprint_) {
    // Say only that the models differ: echoing the coordinator's fingerprint or path would
    // hand a stranger what it needs to pass this check.
    resp.set_reason(
        "model mismatch: the node's model file is not the coordinator's (its SHA-256 "
        "fingerprint differs); every node must hold the coordinator's model");
    std::fprintf(stderr, "tandem coordinator: refused a node from %s: its model differs\n",
                 r.address().c_str());
    return resp;
  }
  if (r.address().empty()) {
    resp.set_reason("the node gave no address");
    return resp;
  }
  const int n_layers = static_cast<int>(profile_.layers.size());
  HeldWeights held;
  if (r.fetches_weights()) {
    absl::StatusOr<HeldWeights> cached =
        CachedWeights(n_layers, r.cached_layers(), r.cached_embedding(), r.cached_head());
    if (!cached.ok()) {
      resp.set_reason(std::string(cached.status().message()));
      return resp;
    }
    held = *std::move(cached);
  }
  const double rtt_ms = link_->MeasureRttMs(r.address(), identity);
  if (!identity.empty() && rtt_ms <= 0) {
    // Proof that the address is the node's: it answers there with its own certificate.
    resp.set_reason(absl::StrCat("the node does not answer at ", r.address(),
                                 " with its certificate (check --advertise)"));
    std::fprintf(stderr, "tandem coordinator: refused %s: it does not answer at %s\n",
                 identity.c_str(), r.address().c_str());
    return resp;
  }
  resp.set_accepted(true);
  const Registry::Registration reg =
      registry_.Register(r.address(), r.boot_id(), r.profile(), identity);
  resp.set_node_id(reg.id);
  registry_.SetHeld(resp.node_id(), std::move(held));
  if (!reg.replaced.empty()) {
    // A node restarted (at the same address, or with the same certificate): the old
    // process and its state are gone.
    std::fprintf(stderr, "tandem coordinator: %s restarted at %s; it is now %s\n",
                 reg.replaced.c_str(), r.address().c_str(), reg.id.c_str());
    telemetry_.NodeDied(reg.replaced);
  }
  registry_.SetRtt(resp.node_id(), rtt_ms);
  telemetry_.NodeJoined(resp.node_id(), r.address());
  resp.set_heartbeat_interval_ms(static_cast<uint32_t>(options_.heartbeat_interval.count()));
  std::fprintf(stderr,
               "tandem coordinator: %s registered from %s (%.1f MiB, %.1f GB/s, %.1f GFLOP/s)\n",
               resp.node_id().c_str(), r.address().c_str(), r.profile().memory_bytes() / 1048576.0,
               r.profile().bandwidth_gbs(), r.profile().gflops());
  return resp;
}

v1::HeartbeatResponse Coordinator::Heartbeat(const v1::HeartbeatRequest& r,
                                             const std::string& identity) {
  v1::HeartbeatResponse resp;
  if (r.draining()) {
    const std::optional<NodeRecord> n = registry_.Find(r.node_id());
    if (n && n->alive && !n->draining && n->boot_id == r.boot_id() && n->identity == identity) {
      std::fprintf(stderr, "tandem coordinator: %s is draining\n", n->id.c_str());
      telemetry_.NodeDraining(n->id);
    }
  }
  if (!registry_.Heartbeat(r, identity)) return resp;
  resp.set_known(true);
  telemetry_.Heartbeat(r);
  std::lock_guard<std::mutex> lock(mutex_);
  resp.set_plan_epoch(epoch_);
  bool in_plan = false;
  for (const auto& st : plan_.stages) in_plan |= st.node.id == r.node_id();
  resp.set_in_plan(in_plan);
  // A plan node whose heartbeats keep disagreeing with the plan (another epoch, or not
  // serving: it restarted, or lost a Configure) gets the plan applied again. One
  // disagreement is allowed: a heartbeat may have been measured before its Configure.
  if (in_plan && ready_ && !applying_) {
    int& n = disagreements_[r.node_id()];
    n = (r.plan_epoch() != epoch_ || !r.serving()) ? n + 1 : 0;
    if (n >= 2 && !reapply_) {
      reapply_ = true;
      reapply_reason_ =
          absl::StrCat(r.node_id(), " reports epoch ", r.plan_epoch(),
                       r.serving() ? "" : " and does not serve", "; the plan is epoch ", epoch_);
    }
  }
  return resp;
}

void Coordinator::set_http_address(std::string address) {
  std::lock_guard<std::mutex> lock(mutex_);
  http_address_ = std::move(address);
}

v1::StatusResponse Coordinator::Status() {
  v1::StatusResponse s;
  const std::vector<NodeRecord> alive = registry_.Alive();
  std::lock_guard<std::mutex> lock(mutex_);
  s.set_ready(ready_);
  s.set_plan_epoch(epoch_);
  s.set_n_nodes(static_cast<int>(alive.size()));
  s.set_model(options_.model_path);
  s.set_reason(ready_ ? "" : not_ready_reason_);
  s.set_predicted_ms_per_token(plan_.predicted_seconds_per_token * 1e3);
  s.set_predicted_tokens_per_s(plan_.predicted_tokens_per_second);
  s.set_n_layers(static_cast<int32_t>(profile_.layers.size()));
  for (const auto& n : alive) {
    auto* info = s.add_nodes();
    info->set_node_id(n.id);
    info->set_address(n.address);
    info->set_identity(n.identity);
    *info->mutable_profile() = n.profile;
    info->set_rtt_ms(n.rtt_ms);
    info->set_sessions(n.sessions);
    if (n.has_fetch) *info->mutable_fetch() = n.fetch;
  }
  s.set_planner(options_.planning.policy == PlanPolicy::kOptimal ? "optimal"
                : options_.planning.policy == PlanPolicy::kEven  ? "even"
                                                                 : "manual");
  s.set_n_ctx(n_ctx_);
  s.set_sessions(options_.planning.requirements.sessions);
  s.set_http_address(http_address_);
  for (const auto& st : plan_.stages) {
    auto* p = s.add_stages();
    p->set_node_id(st.node.id);
    p->set_address(st.node.address);
    p->set_layer_first(st.layer_first);
    p->set_layer_last(st.layer_last);
    p->set_memory_bytes(st.memory_bytes);
    p->set_node_memory_bytes(st.node.profile.memory_bytes());
    p->set_weight_bytes(st.weight_bytes);
    p->set_kv_bytes(st.kv_bytes);
    p->set_compute_ms(st.compute_seconds * 1e3);
  }
  RecordGaugesLocked();
  telemetry_.Fill(registry_.All(), &s);
  return s;
}

namespace {
std::string HostOf(const std::string& address) { return address.substr(0, address.rfind(':')); }

// The ids among `node_ids` that `plan` gives no layers. Without a plan none: every node
// still waits for the first one.
std::vector<std::string> NodesWithoutLayers(const std::vector<std::string>& node_ids,
                                            const ClusterPlan& plan) {
  std::vector<std::string> out;
  if (plan.stages.empty()) return out;
  for (const std::string& id : node_ids) {
    const bool in_plan = std::any_of(plan.stages.begin(), plan.stages.end(),
                                     [&id](const StagePlan& st) { return st.node.id == id; });
    if (!in_plan) out.push_back(id);
  }
  return out;
}
long long ToMs(std::chrono::steady_clock::duration d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}
}  // namespace

bool Coordinator::UseLockstep(const ClusterPlan& plan) const {
  switch (options_.batching) {
    case BatchingMode::kLockstep:
      return true;
    case BatchingMode::kPipelined:
      return false;
    case BatchingMode::kAuto:
      break;
  }
  if (plan.stages.size() < 2) return false;
  for (const auto& st : plan.stages) {
    if (HostOf(st.node.address) != HostOf(plan.stages[0].node.address)) return false;
  }
  return true;
}

v1::ConfigureRequest Coordinator::StageRequest(const ClusterPlan& plan, size_t i, uint64_t epoch,
                                               bool lockstep,
                                               const std::vector<NodeRecord>& alive) const {
  const StagePlan& st = plan.stages[i];
  v1::ConfigureRequest req;
  req.set_protocol_version(kProtocolVersion);
  req.set_plan_epoch(epoch);
  req.set_layer_first(st.layer_first);
  req.set_layer_last(st.layer_last);
  req.set_next_hop(i + 1 < plan.stages.size() ? plan.stages[i + 1].node.address : "");
  req.set_next_hop_identity(i + 1 < plan.stages.size() ? plan.stages[i + 1].node.identity : "");
  // The first stage takes frames from the coordinator, every other from the one before.
  req.set_upstream_identity(i == 0 ? LocalIdentity() : plan.stages[i - 1].node.identity);
  req.set_wire_dtype(options_.wire_dtype);
  req.set_n_ctx(n_ctx_);
  req.set_node_id(st.node.id);
  req.set_lockstep_batching(lockstep);
  // A node without the model file fetches what it lacks: first from peers that hold some
  // of these layers (the coordinator is its last resort). With certificates, each peer's
  // identity goes along: the fetching node checks that the peer's certificate names it.
  constexpr int kMaxWeightSources = 4;
  for (const NodeRecord& peer : alive) {
    if (st.node.held.all || req.weight_sources_size() >= kMaxWeightSources) break;
    if (LinksSecure() && peer.identity.empty()) continue;
    if (peer.id != st.node.id && peer.held.Overlaps(st.layer_first, st.layer_last)) {
      req.add_weight_sources(peer.address);
      if (LinksSecure()) req.add_weight_source_identities(peer.identity);
    }
  }
  return req;
}

void Coordinator::NoteCache(const std::string& id, const v1::ConfigureResponse& r) {
  if (!r.reports_cache()) return;
  // A cache pruned to its size limit no longer holds what earlier plans gave the node.
  absl::StatusOr<HeldWeights> held =
      CachedWeights(static_cast<int>(profile_.layers.size()), r.cached_layers(),
                    r.cached_embedding(), r.cached_head());
  if (held.ok()) registry_.SetHeld(id, *std::move(held));
}

void Coordinator::PrefetchStages(const ClusterPlan& plan, uint64_t epoch, bool lockstep,
                                 const std::vector<NodeRecord>& alive) {
  std::vector<size_t> fetching;
  for (size_t i = 0; i < plan.stages.size(); ++i) {
    if (!plan.stages[i].node.held.all) fetching.push_back(i);
  }
  if (fetching.size() < 2) return;  // one transfer overlaps nothing
  const auto start = std::chrono::steady_clock::now();
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t k; (k = next++) < fetching.size();) {
      const StagePlan& st = plan.stages[fetching[k]];
      v1::ConfigureRequest req = StageRequest(plan, fetching[k], epoch, lockstep, alive);
      req.set_prefetch_only(true);
      absl::StatusOr<v1::ConfigureResponse> resp =
          link_->Configure(st.node.address, st.node.identity, req, StillBeating(st.node.id));
      if (resp.ok()) NoteCache(st.node.id, *resp);
      if (!resp.ok() || !resp->ok()) {
        // The configuration that follows asks again, and reports what fails.
        std::fprintf(stderr, "tandem coordinator: %s could not fetch layers [%d, %d) ahead: %s\n",
                     st.node.id.c_str(), st.layer_first, st.layer_last,
                     (resp.ok() ? resp->reason() : std::string(resp.status().message())).c_str());
      }
    }
  };
  std::vector<std::thread> pool;
  for (size_t t = 1; t < std::min(fetching.size(), kMaxConcurrentFetches); ++t) {
    pool.emplace_back(work);
  }
  work();
  for (std::thread& t : pool) t.join();
  std::fprintf(stderr, "tandem coordinator: %zu stages fetched their layers at once in %.2f s\n",
               fetching.size(),
               std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
}

// Whether node `id` still beats: a configuration (a load or a fetch, minutes long) is not
// waited for once its node stops.
std::function<bool()> Coordinator::StillBeating(const std::string& id) {
  return [this, id] {
    const std::optional<NodeRecord> n = registry_.Find(id);
    return n && n->alive && options_.now() - n->last_seen <= options_.node_timeout;
  };
}

absl::Status Coordinator::ApplyPlan(const ClusterPlan& plan, uint64_t epoch,
                                    std::string* failed_node) {
  const bool lockstep = UseLockstep(plan);
  const int n_layers = static_cast<int>(profile_.layers.size());
  const std::vector<NodeRecord> alive = registry_.Alive();
  // Fetches take long and are independent: all at once, before the stages are configured
  // one by one (which then finds the tensors in the nodes' caches).
  PrefetchStages(plan, epoch, lockstep, alive);
  // Last stage first, so every next hop serves before its upstream sends.
  for (size_t i = plan.stages.size(); i-- > 0;) {
    const StagePlan& st = plan.stages[i];
    const v1::ConfigureRequest req = StageRequest(plan, i, epoch, lockstep, alive);
    // Loading (or fetching) may take minutes; a node that stops beating meanwhile is not
    // waited for.
    absl::StatusOr<v1::ConfigureResponse> resp =
        link_->Configure(st.node.address, st.node.identity, req, StillBeating(st.node.id));
    if (!resp.ok() || !resp->ok()) {
      *failed_node = st.node.id;
      if (!resp.ok()) return resp.status();
      return absl::FailedPreconditionError(absl::StrCat(st.node.id, " refused layers [",
                                                        st.layer_first, ", ", st.layer_last,
                                                        "): ", resp->reason()));
    }
    NoteCache(st.node.id, *resp);
    registry_.AddHeldStage(st.node.id, st.layer_first, st.layer_last, n_layers);
    registry_.Configured(st.node.id, epoch);
  }
  return absl::OkStatus();
}

void Coordinator::Tick() {
  ReplanIfNeeded();
  CheckProgress();
  FailStalledSessions();
  std::lock_guard<std::mutex> lock(mutex_);
  RecordGaugesLocked();
}

void Coordinator::RecordGaugesLocked() {
  int64_t queued = 0;
  for (const auto& [id, s] : sessions_) queued += s->plan_epoch == 0 ? 1 : 0;
  telemetry_.SetSessions(static_cast<int64_t>(sessions_.size()) - queued, queued);
  telemetry_.SetNodes(registry_.All());
}

void Coordinator::FenceNode(const std::string& id, const std::string& why) {
  const std::chrono::milliseconds backoff = registry_.Fence(id);
  std::fprintf(stderr, "tandem coordinator: fenced %s for %.1f s: %s\n", id.c_str(),
               backoff.count() / 1e3, why.c_str());
  telemetry_.NodeFenced(id,
                        absl::StrCat(why, "; left out of plans for ", backoff.count() / 1e3, " s"));
}

std::vector<std::string> Coordinator::RefusingSilentNodes() {
  const auto now = options_.now();
  const auto silent = options_.heartbeat_interval * 3 / 2;
  std::vector<std::string> gone;
  for (const NodeRecord& n : registry_.Alive()) {
    if (now - n.last_seen <= silent) continue;
    auto [last, first] = probed_.try_emplace(n.id, now);
    if (!first && now - last->second < options_.heartbeat_interval) continue;
    last->second = now;
    if (link_->Refused(n.address, n.identity)) gone.push_back(n.id);
  }
  return gone;
}

std::vector<NodeRecord> Coordinator::RevokedNodes() const {
  std::vector<NodeRecord> out;
  if (!options_.is_revoked) return out;
  for (NodeRecord& n : registry_.Alive()) {
    if (!n.identity.empty() && options_.is_revoked(n.identity)) out.push_back(std::move(n));
  }
  return out;
}

void Coordinator::ReplanIfNeeded() {
  std::vector<std::string> gone = RefusingSilentNodes();
  const std::vector<NodeRecord> revoked = RevokedNodes();
  for (const NodeRecord& n : revoked) gone.push_back(n.id);
  const Registry::Expired expired = registry_.Expire(gone);
  for (const auto& id : expired.pruned) {
    telemetry_.Forget(id);
    probed_.erase(id);
  }
  for (const auto& id : expired.dead) probed_.erase(id);  // a node that comes back is probed anew
  std::vector<NodeRecord> plannable = registry_.Plannable();
  std::vector<std::string> plannable_ids;
  for (const auto& n : plannable) plannable_ids.push_back(n.id);
  std::sort(plannable_ids.begin(), plannable_ids.end());
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& id : expired.dead) {
      const auto r = std::find_if(revoked.begin(), revoked.end(),
                                  [&id](const NodeRecord& n) { return n.id == id; });
      const std::string why =
          r == revoked.end()
              ? "stopped answering"
              : absl::StrCat("(", r->identity, ") is revoked: it leaves the cluster");
      std::fprintf(stderr, "tandem coordinator: %s %s\n", id.c_str(), why.c_str());
      telemetry_.NodeDied(id, why);
    }
    // The plan in force needs every one of its nodes: alive (and the same process),
    // not draining, not fenced.
    for (const auto& st : plan_.stages) {
      if (!ready_ || registry_.IsPlannable(st.node.id)) continue;
      const std::optional<NodeRecord> n = registry_.Find(st.node.id);
      ready_ = false;
      not_ready_reason_ = absl::StrCat(st.node.id,
                                       !n || !n->alive ? " is gone"
                                       : n->draining   ? " is draining"
                                                       : " was fenced",
                                       "; re-planning");
      std::fprintf(stderr, "tandem coordinator: %s\n", not_ready_reason_.c_str());
    }
    if (ready_ && reapply_) {
      ready_ = false;
      not_ready_reason_ = absl::StrCat(reapply_reason_, "; applying the plan again");
      std::fprintf(stderr, "tandem coordinator: %s\n", not_ready_reason_.c_str());
    }
    reapply_ = false;
    // The nodes that may be planned changed since the plan (one joined, came back from a
    // fence, or left): the planner decides whether the plan changes. The optimal planner
    // keeps it unless a clearly better one exists (re-planning moves layers and replays
    // sessions); the even split uses every node.
    if (ready_ && plannable_ids == planned_nodes_) return;
    // min_nodes gates the first plan; after a loss, the survivors carry on.
    const int needed = plan_.stages.empty() ? options_.min_nodes : 1;
    if (static_cast<int>(plannable.size()) < needed) {
      not_ready_reason_ = absl::StrCat("waiting for nodes: ", plannable.size(), " of ", needed);
      return;
    }
  }
  PlanningOptions planning = options_.planning;
  if (planning.policy == PlanPolicy::kManual && planning.layer_counts.size() != plannable.size()) {
    planning.policy = PlanPolicy::kEven;  // the given split no longer fits the nodes left
  }
  ClusterPlan previous;
  bool was_ready;
  uint64_t epoch;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    previous = plan_;
    was_ready = ready_;
    epoch = epoch_ + 1;
  }
  auto plan =
      MakeClusterPlan(profile_, plannable, planning, previous.stages.empty() ? nullptr : &previous);
  if (!plan.ok()) {
    // E.g. more nodes than layers for the even split: the plan in force goes on, and the
    // nodes it leaves out wait on standby.
    telemetry_.SetWithoutLayers(NodesWithoutLayers(plannable_ids, previous));
    std::lock_guard<std::mutex> lock(mutex_);
    not_ready_reason_ = std::string(plan.status().message());
    return;
  }
  if (was_ready && !plan->changed) {
    telemetry_.SetWithoutLayers(NodesWithoutLayers(plannable_ids, previous));
    std::lock_guard<std::mutex> lock(mutex_);
    planned_nodes_ = plannable_ids;  // keep the plan in force
    return;
  }
  telemetry_.SetWithoutLayers(NodesWithoutLayers(plannable_ids, *plan));
  {
    std::lock_guard<std::mutex> lock(mutex_);
    applying_ = true;
    attempted_epoch_ = epoch;
    // Not "waiting for nodes" any more while they load (which may take minutes).
    if (!ready_) {
      not_ready_reason_ = absl::StrCat("plan epoch ", epoch, ": the nodes load their layers");
    }
  }
  std::string failed_node;
  absl::Status applied = ApplyPlan(*plan, epoch, &failed_node);
  std::shared_ptr<FrameSink> head = applied.ok()
                                        ? link_->OpenFrameStream(plan->stages.front().node.address,
                                                                 plan->stages.front().node.identity)
                                        : nullptr;
  std::vector<v1::ActivationFrame> replay;
  std::shared_ptr<FrameSink> old_head;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    applying_ = false;
    if (!applied.ok()) {
      // Some stages may serve the new epoch already: the number is used up, so that no
      // two plans ever share an epoch.
      epoch_ = epoch;
      current_epoch_ = epoch;
      ready_ = false;
      not_ready_reason_ = std::string(applied.message());
      std::fprintf(stderr, "tandem coordinator: %s\n", not_ready_reason_.c_str());
      telemetry_.PlanFailed(not_ready_reason_);
    } else {
      epoch_ = epoch;
      current_epoch_ = epoch;
      plan_ = *plan;
      planned_nodes_ = plannable_ids;
      disagreements_.clear();
      unreachable_.clear();
      if (!plan->reason.empty()) {
        std::fprintf(stderr, "tandem coordinator: re-plan: %s\n", plan->reason.c_str());
      }
      old_head = std::move(head_);
      head_ = head;
      ready_ = true;
      std::fprintf(stderr, "tandem coordinator: plan epoch %llu ready with %zu stages\n",
                   static_cast<unsigned long long>(epoch_), plan_.stages.size());
      telemetry_.Planned(epoch_, plan_);
      // Sessions in flight (and those waiting for a first plan) continue on the new plan:
      // their history is replayed from the start, and the next token is sampled exactly
      // as it would have been.
      const auto now = options_.now();
      for (auto& [id, s] : sessions_) {
        s->plan_epoch = epoch_;
        s->last_progress = now;
        auto frames = StepFrames(*s, 0);
        replay.insert(replay.end(), frames.begin(), frames.end());
      }
      if (epoch_ > 1) telemetry_.SessionsRecovered(epoch_, sessions_.size());
    }
  }
  // A node that could not be configured sits out its backoff: the next tick plans
  // without it rather than retrying it every tick.
  if (!applied.ok() && !failed_node.empty()) FenceNode(failed_node, applied.ToString());
  // The old head's stream carries only frames of the old epoch: end it now, so a write
  // blocked on a hung node cannot hold the sender.
  if (old_head) old_head->Abort();
  Send(std::move(replay), head);
}

void Coordinator::CheckProgress() {
  const auto now = options_.now();
  std::vector<std::pair<std::string, std::string>> suspects;  // id, why
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!ready_ || plan_.stages.empty()) return;
    // A stage that could not reach its next one in this epoch names the culprit at once.
    for (const auto& id : unreachable_) {
      suspects.emplace_back(id, "the stage before it could not reach it");
    }
    unreachable_.clear();
    // The session that has waited longest for its next token in this plan.
    std::chrono::steady_clock::duration waited{0};
    std::chrono::steady_clock::time_point since = now;
    size_t waiting = 0;
    for (const auto& [id, s] : sessions_) {
      if (s->plan_epoch != epoch_) continue;
      const auto w = now - s->last_progress;
      if (w >= options_.stall_timeout) ++waiting;
      if (w > waited) {
        waited = w;
        since = s->last_progress;
      }
    }
    // Heartbeats come from their own thread: one late by four intervals while a session
    // waits as long is strong evidence (hung, stopped, cut off), taken before the stall
    // timeout. A report of stalled work, or lost work, waits for the stall timeout.
    const auto late = std::min<std::chrono::steady_clock::duration>(4 * options_.heartbeat_interval,
                                                                    options_.stall_timeout);
    if (suspects.empty() &&
        (waited < late || now - last_fence_ < std::max<std::chrono::steady_clock::duration>(
                                                  late, options_.heartbeat_interval))) {
      return;
    }
    if (suspects.empty()) {
      // Who holds the sessions up: a stage whose heartbeats are late, or one that reports
      // work it has not progressed for the stall timeout.
      bool all_idle = true;
      for (const auto& st : plan_.stages) {
        const std::optional<NodeRecord> n = registry_.Find(st.node.id);
        if (!n) continue;
        const auto silent = now - n->last_seen;
        if (silent > late) {
          suspects.emplace_back(
              n->id, absl::StrCat("no heartbeat for ", ToMs(silent), " ms while a session waited ",
                                  ToMs(waited), " ms for a token"));
        } else if (n->stalled_ms >= options_.stall_timeout.count()) {
          suspects.emplace_back(
              n->id, absl::StrCat("it held work without progress for ", n->stalled_ms, " ms"));
        }
        // An idle report counts only when measured after the session's last progress.
        if (n->pending_frames > 0 || n->last_seen < since + options_.heartbeat_interval) {
          all_idle = false;
        }
      }
      if (suspects.empty()) {
        // The stages are busy (slow, not stuck), or the stall timeout has not passed.
        if (!all_idle || waited < options_.stall_timeout) return;
        // Every stage idle, yet a session waits: its frame or result was lost on the way.
        last_fence_ = now;
        reapply_ = true;
        reapply_reason_ = absl::StrCat(waiting, " session(s) made no progress for ", ToMs(waited),
                                       " ms while every stage was idle");
        return;
      }
    }
    last_fence_ = now;
  }
  for (const auto& [id, why] : suspects) {
    if (registry_.IsPlannable(id)) FenceNode(id, why);
  }
}

void Coordinator::FailStalledSessions() {
  const auto now = options_.now();
  std::vector<std::pair<uint64_t, absl::Status>> stalled;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& [id, s] : sessions_) {
      if (s->plan_epoch == 0 && now - s->started > options_.ready_wait) {
        stalled.emplace_back(id, absl::UnavailableError(absl::StrCat("the cluster is not ready: ",
                                                                     not_ready_reason_)));
      } else if (s->plan_epoch != 0 && now - s->last_progress > options_.stall_limit) {
        stalled.emplace_back(id, absl::DeadlineExceededError(absl::StrCat(
                                     "no progress for ", options_.stall_limit.count() / 1000,
                                     " s: the cluster lost a node and cannot re-plan")));
      }
    }
  }
  for (const auto& [id, status] : stalled) {
    telemetry_.Refused(status.code() == absl::StatusCode::kUnavailable ? "not_ready" : "stalled",
                       status.message());
    FailSession(id, status);
  }
}

std::vector<v1::ActivationFrame> Coordinator::StepFrames(const Session& s, int64_t from) const {
  return HistoryFrames(s.id(), s.plan_epoch, s.state().history(), from, chunk_tokens_,
                       s.state().sampling());
}

void Coordinator::Send(std::vector<v1::ActivationFrame> frames, std::shared_ptr<FrameSink> head) {
  // No pipeline yet: the next plan replays the sessions.
  if (!head || frames.empty()) return;
  {
    std::lock_guard<std::mutex> lock(outbox_mutex_);
    for (auto& f : frames) outbox_.push_back({head, std::move(f)});
  }
  outbox_cv_.notify_one();
}

void Coordinator::SenderLoop() {
  for (;;) {
    Outgoing out;
    {
      std::unique_lock<std::mutex> lock(outbox_mutex_);
      outbox_cv_.wait(lock, [&] { return outbox_stop_ || !outbox_.empty(); });
      if (outbox_stop_) return;
      out = std::move(outbox_.front());
      outbox_.pop_front();
      ++sending_;
    }
    // Frames of a plan that was replaced are not sent: the new plan replayed their
    // sessions, and the old first stage may be the hung node.
    absl::Status s = out.frame.plan_epoch() == current_epoch_.load() ? out.head->Send(out.frame)
                                                                     : absl::OkStatus();
    if (!s.ok() && s.code() == absl::StatusCode::kUnavailable) {
      // An unreachable first stage: it is suspect, and the session waits for the re-plan.
      std::lock_guard<std::mutex> lock(mutex_);
      if (out.frame.plan_epoch() == epoch_ && !plan_.stages.empty()) {
        unreachable_.push_back(plan_.stages.front().node.id);
      }
    } else if (!s.ok() && !out.frame.end_session()) {
      FailSession(out.frame.session_id(), s);
    }
    {
      std::lock_guard<std::mutex> lock(outbox_mutex_);
      --sending_;
    }
    outbox_cv_.notify_all();
  }
}

void Coordinator::Flush() {
  std::unique_lock<std::mutex> lock(outbox_mutex_);
  outbox_cv_.wait(lock, [&] { return outbox_stop_ || (outbox_.empty() && sending_ == 0); });
}

void Coordinator::FailSession(uint64_t id, const absl::Status& status) {
  std::shared_ptr<Session> s;
  std::shared_ptr<FrameSink> head;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = sessions_.find(id);
    if (it == sessions_.end()) return;
    s = it->second;
    sessions_.erase(it);
    head = head_;
  }
  if (s->plan_epoch != 0) Send({EndSessionFrame(id, s->plan_epoch)}, head);
  s->Notify(SessionEvent::Error(status));
}

absl::Status Coordinator::AdmitSessionLocked() const {
  const int64_t limit = options_.planning.requirements.sessions;
  if (static_cast<int64_t>(sessions_.size()) >= limit) {
    return absl::ResourceExhaustedError(
        absl::StrCat("the cluster is busy: it serves ", limit,
                     " concurrent sessions (the plan reserves KV memory for that many; "
                     "coordinator --sessions); try again when one ends"));
  }
  return absl::OkStatus();
}

bool Coordinator::ready() {
  std::lock_guard<std::mutex> lock(mutex_);
  return ready_;
}

std::string Coordinator::not_ready_reason() {
  std::lock_guard<std::mutex> lock(mutex_);
  return ready_ ? "" : not_ready_reason_;
}

size_t Coordinator::active_sessions() {
  std::lock_guard<std::mutex> lock(mutex_);
  return sessions_.size();
}

uint64_t Coordinator::cancelled_sessions() {
  std::lock_guard<std::mutex> lock(mutex_);
  return cancelled_sessions_;
}

absl::StatusOr<std::shared_ptr<Session>> Coordinator::StartSession(const v1::GenerateRequest& r,
                                                                   Session::Listener listener) {
  // Cheap checks first: admission and the prompt's size, before any tokenizing.
  {
    std::lock_guard<std::mutex> lock(mutex_);
    TANDEM_RETURN_IF_ERROR(AdmitSessionLocked());
  }
  if (static_cast<int64_t>(r.prompt().size()) > max_prompt_bytes_) {
    return absl::OutOfRangeError(absl::StrCat("the prompt of ", r.prompt().size(),
                                              " bytes cannot fit the context of ", n_ctx_,
                                              " tokens"));
  }
  GenerationRequest request;
  try {
    // A remote user's text is plain text: control tokens written in it (say "</s>") are
    // not parsed as such. Only a template the server applies may put them there.
    request.prompt_ids =
        tokenizer_->Encode(r.prompt(), /*add_special=*/true, /*parse_special=*/false);
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError("out of memory while tokenizing the prompt");
  }
  request.n_predict = r.n_predict();
  request.sampling = SamplingFromProto(r.sampling());
  request.stop_at_eos = r.stop_at_eos();
  return StartSession(std::move(request), std::move(listener));
}

absl::StatusOr<std::shared_ptr<Session>> Coordinator::StartSession(GenerationRequest request,
                                                                   Session::Listener listener) {
  if (absl::Status valid = ValidateGenerationRequest(request, n_ctx_, hparams_.n_vocab);
      !valid.ok()) {
    telemetry_.Refused("invalid_request", valid.message());
    return valid;
  }
  for (TokenId t : request.stop_ids) {
    if (t < 0 || t >= hparams_.n_vocab) {
      return absl::InvalidArgumentError(
          absl::StrCat("stop token id ", t, " is outside the vocabulary of ", hparams_.n_vocab));
    }
  }
  std::shared_ptr<Session> s;
  std::vector<v1::ActivationFrame> frames;
  std::shared_ptr<FrameSink> head;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    TANDEM_RETURN_IF_ERROR(AdmitSessionLocked());  // others may have started meanwhile
    uint64_t id;
    do {
      // 64 random bits from the OS for each id: a peer that sees some ids cannot predict
      // another (a seeded generator's later outputs follow from its earlier ones).
      id = (static_cast<uint64_t>(session_ids_()) << 32) | session_ids_();
    } while (id == 0 || sessions_.contains(id));
    s = std::make_shared<Session>(id, std::move(request), std::move(listener));
    s->started = s->last_progress = options_.now();
    // Without a plan the session waits; the first plan replays it (Tick fails it after
    // ready_wait).
    s->plan_epoch = ready_ ? epoch_ : 0;
    if (!s->state().done()) sessions_[s->id()] = s;
    if (ready_ && !s->state().done()) {
      frames = StepFrames(*s, 0);
      head = head_;
    }
  }
  if (s->state().done()) s->Notify(SessionEvent::Done());  // nothing to generate
  Send(std::move(frames), head);
  return s;
}

void Coordinator::CancelSession(uint64_t id) {
  std::shared_ptr<FrameSink> head;
  uint64_t epoch;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = sessions_.find(id);
    if (it == sessions_.end()) return;
    epoch = it->second->plan_epoch;
    sessions_.erase(it);
    ++cancelled_sessions_;
    head = head_;
  }
  if (epoch != 0) Send({EndSessionFrame(id, epoch)}, head);
}

absl::Status Coordinator::OnResult(const v1::StepResult& r, const std::string& identity) {
  std::shared_ptr<Session> s;
  std::vector<v1::ActivationFrame> frames;
  std::shared_ptr<FrameSink> head;
  SessionEvent event;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    // With certificates, only the stages of the plan report (the last samples tokens):
    // another member cannot speak for them, whatever session it names.
    if (!identity.empty() &&
        std::none_of(plan_.stages.begin(), plan_.stages.end(),
                     [&](const StagePlan& st) { return st.node.identity == identity; })) {
      return absl::PermissionDeniedError(absl::StrCat(identity, " is not a stage of the plan"));
    }
    auto it = sessions_.find(r.session_id());
    // A session that ended (cancelled, failed) may still have results on their way.
    if (it == sessions_.end()) return absl::OkStatus();
    s = it->second;
    // From a plan that was replaced.
    if (r.plan_epoch() != s->plan_epoch) return absl::OkStatus();
    if (!identity.empty() && r.code() == 0 && plan_.stages.back().node.identity != identity) {
      return absl::PermissionDeniedError(
          absl::StrCat(identity, " is not the last stage and may not report tokens"));
    }
    head = head_;
    if (r.code() != 0 && r.plan_epoch() < attempted_epoch_) {
      // A newer plan is being applied (or failed to apply): stages already on it refuse
      // this epoch's frames. The session is replayed on the new plan.
      return absl::OkStatus();
    }
    if (r.code() == static_cast<int>(absl::StatusCode::kUnavailable)) {
      // A stage could not reach the next one (or had no stage): that one is suspect, and
      // the session waits for the re-plan, which replays its history.
      std::fprintf(stderr, "tandem coordinator: session %llu waits for a re-plan: %s: %s\n",
                   static_cast<unsigned long long>(r.session_id()), r.node_id().c_str(),
                   r.message().c_str());
      if (r.plan_epoch() == epoch_) {
        for (size_t i = 0; i + 1 < plan_.stages.size(); ++i) {
          if (plan_.stages[i].node.id == r.node_id()) {
            unreachable_.push_back(plan_.stages[i + 1].node.id);
          }
        }
      }
      return absl::OkStatus();
    }
    if (r.code() != 0) {
      event.error = absl::Status(static_cast<absl::StatusCode>(r.code()),
                                 absl::StrCat(r.node_id(), ": ", r.message()));
    } else if (r.token() < 0 || r.token() >= hparams_.n_vocab) {
      event.error = absl::DataLossError(
          absl::StrCat(r.node_id(), " sent token id ", r.token(), ", outside the vocabulary"));
    } else {
      GenerationState& state = s->state();
      // In one plan epoch every sampling frame yields one result, for the next position:
      // any other position is not from the pipeline, and is refused, not applied.
      if (state.done() || r.position() != state.next_position()) {
        return absl::InvalidArgumentError(
            absl::StrCat("session ", r.session_id(), ": a result for position ", r.position(),
                         " when the session expects ",
                         state.done() ? "none" : absl::StrCat(state.next_position())));
      }
      state.Accept(r.token(), r.position(), tokenizer_->IsEog(r.token()));
      const auto now = options_.now();
      if (s->n_generated() == 1) s->first_token = now;
      telemetry_.Token(s->n_generated() == 1,
                       now - (s->n_generated() == 1 ? s->started : s->last_token));
      s->last_token = s->last_progress = now;
      event.has_token = true;
      event.token = r.token();
      if (s->state().sampling().logprobs) {
        event.logprob = r.logprob();
        // Bounded by what the request asked for; ids outside the vocabulary are dropped.
        const int n_top = std::min(r.top_logprobs_size(), s->state().sampling().top_logprobs);
        for (int i = 0; i < n_top; ++i) {
          const auto& t = r.top_logprobs(i);
          if (t.token() >= 0 && t.token() < hparams_.n_vocab) {
            event.top_logprobs.push_back({t.token(), t.logprob()});
          }
        }
      }
      event.done = state.done();
      if (!event.done) frames = StepFrames(*s, state.next_position() - 1);
    }
    if (!event.error.ok() || event.done) {
      sessions_.erase(it);
      frames.push_back(EndSessionFrame(s->id(), s->plan_epoch));
    }
  }
  s->Notify(event);
  Send(std::move(frames), head);
  return absl::OkStatus();
}

}  // namespace tandem
