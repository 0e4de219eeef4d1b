#include "coordinator/coordinator.h"

#include <algorithm>
#include <cstdio>

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "coordinator/model_profile.h"
#include "model/fingerprint.h"
#include "model/status_macros.h"
#include "net/convert.h"
#include "node/stage.h"
#include "tandem.grpc.pb.h"

namespace tandem {

absl::StatusOr<std::unique_ptr<Coordinator>> Coordinator::Create(CoordinatorOptions options) {
  std::unique_ptr<Coordinator> c(new Coordinator(std::move(options)));
  TANDEM_ASSIGN_OR_RETURN(std::unique_ptr<GgufFile> file, GgufFile::Open(c->options_.model_path));
  c->file_ = std::move(file);
  TANDEM_ASSIGN_OR_RETURN(c->hparams_, ReadHparams(*c->file_));
  TANDEM_ASSIGN_OR_RETURN(c->tokenizer_, Tokenizer::FromGguf(*c->file_));
  TANDEM_ASSIGN_OR_RETURN(c->profile_, BuildModelProfile(*c->file_, c->hparams_));
  c->fingerprint_ = ModelFingerprint(*c->file_);
  c->n_ctx_ = c->options_.n_ctx > 0 ? c->options_.n_ctx : c->hparams_.n_ctx_train;
  c->options_.planning.requirements.context_length = c->n_ctx_;
  // Prefill frames carry at most kMaxFrameBytes of f32 activations after the first stage.
  c->chunk_tokens_ = std::max<int64_t>(1, kMaxFrameBytes / (c->hparams_.n_embd * sizeof(float)));
  c->planner_ = std::thread([raw = c.get()] { raw->PlannerLoop(); });
  return c;
}

Coordinator::~Coordinator() {
  stop_ = true;
  if (planner_.joinable()) planner_.join();
}

namespace {

// Median of a few empty round trips to the node's service.
double MeasureRttMs(const std::string& address) {
  auto stub = v1::Node::NewStub(MakeChannel(address));
  std::vector<double> samples;
  for (int i = 0; i < 7; ++i) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    v1::PingReply reply;
    const auto t0 = std::chrono::steady_clock::now();
    if (!stub->Ping(&ctx, v1::PingRequest(), &reply).ok()) continue;
    samples.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  if (samples.empty()) return 0;
  std::sort(samples.begin(), samples.end());
  // The first call opens the connection; the median ignores it.
  return samples[samples.size() / 2];
}

}  // namespace

v1::RegisterResponse Coordinator::Register(const v1::RegisterRequest& r) {
  v1::RegisterResponse resp;
  if (r.protocol_version() != kProtocolVersion) {
    resp.set_reason(absl::StrCat("protocol version ", r.protocol_version(),
                                 " is not supported; the coordinator speaks ", kProtocolVersion));
    return resp;
  }
  if (r.model_fingerprint() != fingerprint_) {
    resp.set_reason(absl::StrCat("model mismatch: the node's file ", r.model_path(),
                                 " has fingerprint ", r.model_fingerprint(), ", the coordinator's ",
                                 options_.model_path, " has ", fingerprint_,
                                 "; every node must hold the coordinator's model"));
    return resp;
  }
  if (r.address().empty()) {
    resp.set_reason("the node gave no address");
    return resp;
  }
  resp.set_accepted(true);
  resp.set_node_id(registry_.Register(r.address(), r.profile()));
  registry_.SetRtt(resp.node_id(), MeasureRttMs(r.address()));
  resp.set_heartbeat_interval_ms(static_cast<uint32_t>(options_.heartbeat_interval.count()));
  std::fprintf(stderr, "tandem coordinator: %s registered from %s (%.1f MiB, %.1f GB/s, %.1f GFLOP/s)\n",
               resp.node_id().c_str(), r.address().c_str(), r.profile().memory_bytes() / 1048576.0,
               r.profile().bandwidth_gbs(), r.profile().gflops());
  return resp;
}

bool Coordinator::Heartbeat(const v1::HeartbeatRequest& r) { return registry_.Heartbeat(r.node_id()); }

v1::StatusResponse Coordinator::Status() {
  v1::StatusResponse s;
  std::lock_guard<std::mutex> lock(mutex_);
  s.set_ready(ready_);
  s.set_plan_epoch(epoch_);
  s.set_n_nodes(static_cast<int>(registry_.Alive().size()));
  s.set_model(options_.model_path);
  s.set_reason(ready_ ? "" : not_ready_reason_);
  s.set_predicted_ms_per_token(plan_.predicted_seconds_per_token * 1e3);
  s.set_predicted_tokens_per_s(plan_.predicted_tokens_per_second);
  s.set_n_layers(static_cast<int32_t>(profile_.layers.size()));
  for (const auto& n : registry_.Alive()) {
    auto* info = s.add_nodes();
    info->set_node_id(n.id);
    info->set_address(n.address);
    *info->mutable_profile() = n.profile;
    info->set_rtt_ms(n.rtt_ms);
  }
  s.set_planner(options_.planning.policy == PlanPolicy::kOptimal ? "optimal"
                : options_.planning.policy == PlanPolicy::kEven  ? "even"
                                                                 : "manual");
  s.set_n_ctx(n_ctx_);
  s.set_sessions(options_.planning.requirements.sessions);
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
  return s;
}

namespace {
std::string HostOf(const std::string& address) { return address.substr(0, address.rfind(':')); }
}  // namespace

absl::Status Coordinator::ApplyPlan(const ClusterPlan& plan, uint64_t epoch) {
  bool one_host = true;
  for (const auto& st : plan.stages) one_host &= HostOf(st.node.address) == HostOf(plan.stages[0].node.address);
  const bool lockstep = options_.batching == "lockstep" ||
                        (options_.batching == "auto" && one_host && plan.stages.size() > 1);
  // Last stage first, so every next hop serves before its upstream sends.
  for (size_t i = plan.stages.size(); i-- > 0;) {
    const StagePlan& st = plan.stages[i];
    auto stub = v1::Node::NewStub(MakeChannel(st.node.address));
    v1::ConfigureRequest req;
    req.set_protocol_version(kProtocolVersion);
    req.set_plan_epoch(epoch);
    req.set_layer_first(st.layer_first);
    req.set_layer_last(st.layer_last);
    req.set_next_hop(i + 1 < plan.stages.size() ? plan.stages[i + 1].node.address : "");
    req.set_wire_dtype(options_.wire_dtype);
    req.set_n_ctx(n_ctx_);
    req.set_node_id(st.node.id);
    req.set_lockstep_batching(lockstep);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(10));
    v1::ConfigureResponse resp;
    grpc::Status s = stub->Configure(&ctx, req, &resp);
    if (!s.ok()) {
      return absl::UnavailableError(absl::StrCat("configuring ", st.node.id, " at ", st.node.address,
                                                 " failed: ", s.error_message()));
    }
    if (!resp.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat(st.node.id, " refused layers [", st.layer_first, ", ", st.layer_last, "): ", resp.reason()));
    }
  }
  return absl::OkStatus();
}

void Coordinator::PlannerLoop() {
  while (!stop_) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    std::vector<std::string> dead = registry_.Expire();
    std::vector<NodeRecord> alive = registry_.Alive();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (const auto& id : dead) {
        std::fprintf(stderr, "tandem coordinator: %s stopped answering\n", id.c_str());
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
        continue;
      }
      // min_nodes gates the first plan; after a loss, the survivors carry on.
      const int needed = epoch_ == 0 ? options_.min_nodes : 1;
      if (static_cast<int>(alive.size()) < needed) {
        not_ready_reason_ = absl::StrCat("waiting for nodes: ", alive.size(), " of ", needed);
        continue;
      }
    }
    PlanningOptions planning = options_.planning;
    if (planning.policy == PlanPolicy::kManual && planning.layer_counts.size() != alive.size()) {
      planning.policy = PlanPolicy::kEven;  // the given split no longer fits the nodes left
    }
    const uint64_t generation = registry_.generation();
    ClusterPlan previous;
    bool was_ready;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      previous = plan_;
      was_ready = ready_;
    }
    auto plan = MakeClusterPlan(profile_, alive, planning, epoch_ > 0 ? &previous : nullptr);
    if (plan.ok() && was_ready && !plan->changed) {
      std::lock_guard<std::mutex> lock(mutex_);
      planned_generation_ = generation;  // keep the plan in force
      continue;
    }
    if (!plan.ok()) {
      std::lock_guard<std::mutex> lock(mutex_);
      not_ready_reason_ = std::string(plan.status().message());
      continue;
    }
    uint64_t epoch;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      epoch = epoch_ + 1;
    }
    absl::Status applied = ApplyPlan(*plan, epoch);
    std::vector<v1::ActivationFrame> replay;
    std::shared_ptr<ForwardClient> head;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!applied.ok()) {
        not_ready_reason_ = std::string(applied.message());
        std::fprintf(stderr, "tandem coordinator: %s\n", not_ready_reason_.c_str());
        continue;
      }
      epoch_ = epoch;
      plan_ = *plan;
      planned_generation_ = generation;
      if (!plan->reason.empty()) {
        std::fprintf(stderr, "tandem coordinator: re-plan: %s\n", plan->reason.c_str());
      }
      head_ = std::make_shared<ForwardClient>(plan_.stages.front().node.address, nullptr);
      ready_ = true;
      std::fprintf(stderr, "tandem coordinator: plan epoch %llu ready with %zu stages\n",
                   static_cast<unsigned long long>(epoch_), plan_.stages.size());
      // Sessions in flight continue on the new plan: their history is replayed from the
      // start, and the next token is sampled exactly as it would have been.
      for (auto& [id, s] : sessions_) {
        s->plan_epoch = epoch_;
        auto frames = StepFrames(*s, 0);
        replay.insert(replay.end(), frames.begin(), frames.end());
      }
      head = head_;
    }
    Send(replay, head);
  }
}

std::vector<v1::ActivationFrame> Coordinator::StepFrames(const Session& s, int64_t from) const {
  std::vector<v1::ActivationFrame> frames;
  const auto& history = s.history();
  const int64_t end = static_cast<int64_t>(history.size());
  for (int64_t pos = from; pos < end; pos += chunk_tokens_) {
    const int64_t n = std::min(chunk_tokens_, end - pos);
    v1::ActivationFrame f;
    f.set_protocol_version(kProtocolVersion);
    f.set_session_id(s.id());
    f.set_plan_epoch(s.plan_epoch);
    f.set_position(pos);
    f.set_n_tokens(static_cast<int32_t>(n));
    for (int64_t i = pos; i < pos + n; ++i) f.add_tokens(history[i]);
    if (pos + n == end) {
      f.set_sample(true);
      *f.mutable_sampling() = SamplingToProto(s.sampling());
      if (s.sampling().repeat_penalty != 1.0f) {
        int64_t first = std::max<int64_t>(0, end - s.sampling().repeat_last_n);
        for (int64_t i = first; i < end; ++i) f.add_recent_tokens(history[i]);
      }
    }
    frames.push_back(std::move(f));
  }
  return frames;
}

void Coordinator::Send(const std::vector<v1::ActivationFrame>& frames,
                       std::shared_ptr<ForwardClient> head) {
  for (const auto& f : frames) {
    if (!head) continue;  // no pipeline yet: the next plan replays the session
    absl::Status s = head->Send(f);
    // An unreachable first stage is a dead node: the session waits for the re-plan.
    if (!s.ok() && s.code() != absl::StatusCode::kUnavailable) FailSession(f.session_id(), s);
  }
}

void Coordinator::FailSession(uint64_t id, const absl::Status& status) {
  std::shared_ptr<Session> s;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = sessions_.find(id);
    if (it == sessions_.end()) return;
    s = it->second;
    sessions_.erase(it);
  }
  s->Push(SessionEvent::Error(status));
}

absl::StatusOr<std::shared_ptr<Session>> Coordinator::StartSession(const v1::GenerateRequest& r,
                                                                   std::vector<int32_t>* prompt_ids) {
  *prompt_ids = tokenizer_->Encode(r.prompt(), /*add_special=*/true, /*parse_special=*/true);
  if (prompt_ids->empty()) return absl::InvalidArgumentError("the prompt has no tokens");
  if (r.n_predict() < 0) return absl::InvalidArgumentError("n_predict is negative");
  SamplingParams sampling = SamplingFromProto(r.sampling());
  TANDEM_RETURN_IF_ERROR(ValidateSamplingParams(sampling));
  const int64_t needed = static_cast<int64_t>(prompt_ids->size()) + r.n_predict();
  if (needed > n_ctx_) {
    return absl::OutOfRangeError(absl::StrCat("prompt (", prompt_ids->size(), " tokens) + ",
                                              r.n_predict(), " generated tokens exceed the context of ",
                                              n_ctx_, " tokens"));
  }
  // Wait briefly for a plan: a cluster that is still starting is not an error.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  std::shared_ptr<Session> s;
  std::vector<v1::ActivationFrame> frames;
  std::shared_ptr<ForwardClient> head;
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (ready_) {
        s = std::make_shared<Session>(next_session_id_++, *prompt_ids, r.n_predict(), sampling,
                                      r.stop_at_eos());
        s->plan_epoch = epoch_;
        s->started = std::chrono::steady_clock::now();
        if (r.n_predict() == 0) {
          s->Push(SessionEvent::Done());
          return s;
        }
        sessions_[s->id()] = s;
        frames = StepFrames(*s, 0);
        head = head_;
        break;
      }
      if (std::chrono::steady_clock::now() > deadline) {
        return absl::UnavailableError(absl::StrCat("the cluster is not ready: ", not_ready_reason_));
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  Send(frames, head);
  return s;
}

void Coordinator::CancelSession(uint64_t id) {
  std::shared_ptr<ForwardClient> head;
  v1::ActivationFrame end;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = sessions_.find(id);
    if (it == sessions_.end()) return;
    end.set_protocol_version(kProtocolVersion);
    end.set_session_id(id);
    end.set_plan_epoch(it->second->plan_epoch);
    end.set_end_session(true);
    sessions_.erase(it);
    head = head_;
  }
  if (head) (void)head->Send(end);
}

void Coordinator::OnResult(const v1::StepResult& r) {
  std::shared_ptr<Session> s;
  std::vector<v1::ActivationFrame> frames;
  std::shared_ptr<ForwardClient> head;
  SessionEvent event;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = sessions_.find(r.session_id());
    if (it == sessions_.end()) return;
    s = it->second;
    if (r.plan_epoch() != s->plan_epoch) return;  // from a plan that was replaced
    if (r.code() == static_cast<int>(absl::StatusCode::kUnavailable)) {
      // A stage could not reach the next one: it died or is dying. The session waits for
      // the re-plan, which replays its history.
      std::fprintf(stderr, "tandem coordinator: session %llu waits for a re-plan: %s\n",
                   static_cast<unsigned long long>(r.session_id()), r.message().c_str());
      return;
    }
    if (r.code() != 0) {
      sessions_.erase(it);
      event.error = absl::Status(static_cast<absl::StatusCode>(r.code()),
                                 absl::StrCat(r.node_id(), ": ", r.message()));
      s->Push(event);
      return;
    }
    auto& history = s->history();
    if (r.position() != static_cast<int64_t>(history.size())) return;  // duplicate
    if (r.token() < 0 || r.token() >= hparams_.n_vocab) {
      sessions_.erase(it);
      s->Push(SessionEvent::Error(absl::DataLossError(
          absl::StrCat(r.node_id(), " sent token id ", r.token(), ", outside the vocabulary"))));
      return;
    }
    history.push_back(r.token());
    const auto now = std::chrono::steady_clock::now();
    if (s->n_generated() == 1) s->first_token = now;
    s->last_token = now;
    event.has_token = true;
    event.token = r.token();
    const bool done = s->n_generated() >= s->n_predict() ||
                      (s->stop_at_eos() && tokenizer_->IsEog(r.token()));
    head = head_;
    if (done) {
      event.done = true;
      v1::ActivationFrame end;
      end.set_protocol_version(kProtocolVersion);
      end.set_session_id(s->id());
      end.set_plan_epoch(s->plan_epoch);
      end.set_end_session(true);
      frames.push_back(end);
      sessions_.erase(it);
    } else {
      frames = StepFrames(*s, static_cast<int64_t>(history.size()) - 1);
    }
  }
  s->Push(event);
  Send(frames, head);
}

}  // namespace tandem
