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
      registry_(options_.node_timeout, options_.now),
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
    if (r.cached_layers_size() > n_layers) {
      resp.set_reason(absl::StrCat("the node lists ", r.cached_layers_size(),
                                   " cached layers; the model has ", n_layers));
      return resp;
    }
    held.all = false;
    held.layers.assign(n_layers, false);
    for (int l : r.cached_layers()) {
      if (l >= 0 && l < n_layers) held.layers[l] = true;
    }
    held.embedding = r.cached_embedding();
    held.head = r.cached_head();
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
  resp.set_node_id(registry_.Register(r.address(), r.profile(), identity));
  registry_.SetHeld(resp.node_id(), std::move(held));
  registry_.SetRtt(resp.node_id(), rtt_ms);
  telemetry_.NodeJoined(resp.node_id(), r.address());
  resp.set_heartbeat_interval_ms(static_cast<uint32_t>(options_.heartbeat_interval.count()));
  std::fprintf(stderr,
               "tandem coordinator: %s registered from %s (%.1f MiB, %.1f GB/s, %.1f GFLOP/s)\n",
               resp.node_id().c_str(), r.address().c_str(), r.profile().memory_bytes() / 1048576.0,
               r.profile().bandwidth_gbs(), r.profile().gflops());
  return resp;
}

bool Coordinator::Heartbeat(const v1::HeartbeatRequest& r, const std::string& identity) {
  if (!registry_.Heartbeat(r.node_id(), r.serving(), r.sessions(), identity)) return false;
  telemetry_.Heartbeat(r);
  return true;
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

absl::Status Coordinator::ApplyPlan(const ClusterPlan& plan, uint64_t epoch) {
  const bool lockstep = UseLockstep(plan);
  const int n_layers = static_cast<int>(profile_.layers.size());
  const std::vector<NodeRecord> alive = registry_.Alive();
  // Last stage first, so every next hop serves before its upstream sends.
  for (size_t i = plan.stages.size(); i-- > 0;) {
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
    // of these layers (the coordinator is its last resort). With certificates, only from
    // the coordinator: a peer's certificate identity is not passed along yet.
    constexpr int kMaxWeightSources = 4;
    for (const NodeRecord& peer : alive) {
      if (LinksSecure() || st.node.held.all || req.weight_sources_size() >= kMaxWeightSources) {
        break;
      }
      if (peer.id != st.node.id && peer.held.Overlaps(st.layer_first, st.layer_last)) {
        req.add_weight_sources(peer.address);
      }
    }
    TANDEM_ASSIGN_OR_RETURN(v1::ConfigureResponse resp,
                            link_->Configure(st.node.address, st.node.identity, req));
    if (!resp.ok()) {
      return absl::FailedPreconditionError(absl::StrCat(st.node.id, " refused layers [",
                                                        st.layer_first, ", ", st.layer_last,
                                                        "): ", resp.reason()));
    }
    registry_.AddHeldStage(st.node.id, st.layer_first, st.layer_last, n_layers);
  }
  return absl::OkStatus();
}

void Coordinator::Tick() {
  ReplanIfNeeded();
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

void Coordinator::ReplanIfNeeded() {
  std::vector<std::string> dead = registry_.Expire(RefusingSilentNodes());
  for (const auto& id : dead) probed_.erase(id);
  std::vector<NodeRecord> alive = registry_.Alive();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& id : dead) {
      std::fprintf(stderr, "tandem coordinator: %s stopped answering\n", id.c_str());
      telemetry_.NodeDied(id);
      for (const auto& st : plan_.stages) {
        if (st.node.id == id && ready_) {
          ready_ = false;
          not_ready_reason_ = absl::StrCat(id, " died; re-planning");
        }
      }
    }
    // A node joined (or re-registered) since the plan: the optimal planner may use it,
    // but only when it is clearly better (re-planning moves layers and replays sessions).
    if (ready_ && (options_.planning.policy != PlanPolicy::kOptimal ||
                   registry_.generation() == planned_generation_)) {
      return;
    }
    // min_nodes gates the first plan; after a loss, the survivors carry on.
    const int needed = epoch_ == 0 ? options_.min_nodes : 1;
    if (static_cast<int>(alive.size()) < needed) {
      not_ready_reason_ = absl::StrCat("waiting for nodes: ", alive.size(), " of ", needed);
      return;
    }
  }
  PlanningOptions planning = options_.planning;
  if (planning.policy == PlanPolicy::kManual && planning.layer_counts.size() != alive.size()) {
    planning.policy = PlanPolicy::kEven;  // the given split no longer fits the nodes left
  }
  const uint64_t generation = registry_.generation();
  ClusterPlan previous;
  bool was_ready;
  uint64_t epoch;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    previous = plan_;
    was_ready = ready_;
    epoch = epoch_ + 1;
  }
  auto plan = MakeClusterPlan(profile_, alive, planning, epoch > 1 ? &previous : nullptr);
  if (!plan.ok()) {
    std::lock_guard<std::mutex> lock(mutex_);
    not_ready_reason_ = std::string(plan.status().message());
    return;
  }
  if (was_ready && !plan->changed) {
    std::lock_guard<std::mutex> lock(mutex_);
    planned_generation_ = generation;  // keep the plan in force
    return;
  }
  absl::Status applied = ApplyPlan(*plan, epoch);
  std::shared_ptr<FrameSink> head = applied.ok()
                                        ? link_->OpenFrameStream(plan->stages.front().node.address,
                                                                 plan->stages.front().node.identity)
                                        : nullptr;
  std::vector<v1::ActivationFrame> replay;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!applied.ok()) {
      not_ready_reason_ = std::string(applied.message());
      std::fprintf(stderr, "tandem coordinator: %s\n", not_ready_reason_.c_str());
      telemetry_.PlanFailed(not_ready_reason_);
      return;
    }
    epoch_ = epoch;
    plan_ = *plan;
    planned_generation_ = generation;
    if (!plan->reason.empty()) {
      std::fprintf(stderr, "tandem coordinator: re-plan: %s\n", plan->reason.c_str());
    }
    head_ = head;
    ready_ = true;
    std::fprintf(stderr, "tandem coordinator: plan epoch %llu ready with %zu stages\n",
                 static_cast<unsigned long long>(epoch_), plan_.stages.size());
    telemetry_.Planned(epoch_, plan_);
    // Sessions in flight (and those waiting for a first plan) continue on the new plan:
    // their history is replayed from the start, and the next token is sampled exactly as
    // it would have been.
    for (auto& [id, s] : sessions_) {
      s->plan_epoch = epoch_;
      auto frames = StepFrames(*s, 0);
      replay.insert(replay.end(), frames.begin(), frames.end());
    }
    if (epoch_ > 1) telemetry_.SessionsRecovered(epoch_, sessions_.size());
  }
  Send(std::move(replay), head);
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
    absl::Status s = out.head->Send(out.frame);
    // An unreachable first stage is a dead node: the session waits for the re-plan.
    if (!s.ok() && s.code() != absl::StatusCode::kUnavailable && !out.frame.end_session()) {
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
    if (r.code() == static_cast<int>(absl::StatusCode::kUnavailable)) {
      // A stage could not reach the next one: it died or is dying. The session waits for
      // the re-plan, which replays its history.
      std::fprintf(stderr, "tandem coordinator: session %llu waits for a re-plan: %s\n",
                   static_cast<unsigned long long>(r.session_id()), r.message().c_str());
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
