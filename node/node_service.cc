#include "node/node_service.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <limits>
#include <new>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "net/convert.h"
#include "net/peer_auth.h"

namespace tandem {
namespace {

// Progress while a shard loads: a bar redrawn in place on a terminal, else a line at each
// quarter (logs stay short).
std::function<void(int, int)> LoadProgress(int layer_first, int layer_last) {
  const bool terminal = ::isatty(STDERR_FILENO) == 1;
  const auto start = std::chrono::steady_clock::now();
  return [=](int done, int total) {
    if (total <= 0) return;
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (terminal) {
      constexpr int kWidth = 30;
      const int filled = done * kWidth / total;
      std::fprintf(stderr, "\rtandem node: loading layers [%d, %d) [%s%s] %d/%d %.1f s%s",
                   layer_first, layer_last, std::string(filled, '#').c_str(),
                   std::string(kWidth - filled, '.').c_str(), done, total, seconds,
                   done == total ? "\n" : "");
    } else if (done == total || (done * 4 / total) != ((done - 1) * 4 / total)) {
      std::fprintf(stderr,
                   "tandem node: loading layers [%d, %d): %d/%d checked and prepared (%.1f s)\n",
                   layer_first, layer_last, done, total, seconds);
    }
  };
}

}  // namespace

// Lets the worker answer a Forward stream that may already have ended: rejections, and
// word that a frame from it has been handled (the stream ends only after all were).
class ReplyChannel {
 public:
  struct Target {
    virtual void Reply(v1::FrameReply reply) = 0;
    virtual void Processed(size_t bytes) = 0;
  };
  explicit ReplyChannel(Target* target) : target_(target) {}
  void Send(v1::FrameReply reply) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (target_) target_->Reply(std::move(reply));
  }
  void Processed(size_t bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (target_) target_->Processed(bytes);
  }
  void Detach() {
    std::lock_guard<std::mutex> lock(mutex_);
    target_ = nullptr;
  }

 private:
  std::mutex mutex_;
  Target* target_;
};

namespace {

// One reactor per Forward stream: reads frames into the node's queue, writes replies one
// at a time, and never blocks inside a reaction. Flow control: while the stream's frames
// in the queue hold max_stream_queue_bytes, it stops reading, so the sender's HTTP/2
// window fills and its writes wait; an oversized frame is refused before it is queued.
class ForwardReactor : public grpc::ServerBidiReactor<v1::ActivationFrame, v1::FrameReply>,
                       public ReplyChannel::Target {
 public:
  ForwardReactor(NodeService* node, const grpc::Status& authorized, std::string peer_identity)
      : node_(node), peer_identity_(std::move(peer_identity)) {
    channel_ = std::make_shared<ReplyChannel>(this);
    if (!authorized.ok()) {
      std::lock_guard<std::mutex> lock(mutex_);
      finished_ = true;
      Finish(authorized);
      return;
    }
    if (!node_->AcquireStream()) {
      std::lock_guard<std::mutex> lock(mutex_);
      finished_ = true;
      Finish(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                          absl::StrCat("the node already serves ",
                                       node_->options().max_forward_streams, " Forward streams")));
      return;
    }
    counted_ = true;
    StartRead(&frame_);
  }

  void OnReadDone(bool ok) override {
    // Asked before this stream's lock is taken: the node's lock is never taken under it.
    const bool from_upstream = ok && node_->IsUpstream(peer_identity_);
    // A stream opened before its peer was revoked carries no more frames.
    const bool revoked = ok && !peer_identity_.empty() && IsRevokedPeer(peer_identity_);
    std::unique_lock<std::mutex> lock(mutex_);
    if (!ok) {
      reads_done_ = true;
      MaybeFinishLocked();
      return;
    }
    size_t bytes = frame_.ByteSizeLong();
    absl::Status refusal;
    if (revoked || !from_upstream) {
      // The plan moved on (this peer is no longer the stage before this one), or the peer
      // was revoked. Its frames are refused (not run, not reported to the coordinator).
      v1::FrameReply reply;
      reply.set_session_id(frame_.session_id());
      reply.set_position(frame_.position());
      reply.set_code(grpc::StatusCode::PERMISSION_DENIED);
      reply.set_message(revoked ? absl::StrCat(peer_identity_, " is revoked")
                                : absl::StrCat(peer_identity_, " is not this stage's upstream"));
      if (revoked && !logged_revoked_) {
        logged_revoked_ = true;  // once per stream: a revoked peer cannot flood the log
        std::fprintf(stderr,
                     "tandem node: refused Forward frames on an open stream: %s is revoked\n",
                     peer_identity_.c_str());
      }
      ReplyLocked(std::move(reply));
      frame_.Clear();
      StartRead(&frame_);
      return;
    }
    if (bytes > kMaxFrameBytes + kMaxFrameOverheadBytes) {
      // Refused before it is queued: only a small stand-in keeps its place in the stream's
      // order, so the refusal reaches the sender after those of earlier frames.
      refusal = absl::ResourceExhaustedError(
          absl::StrCat("session ", frame_.session_id(), ": frame of ", bytes,
                       " bytes exceeds the limit of ", kMaxFrameBytes + kMaxFrameOverheadBytes));
      v1::ActivationFrame stand_in;
      stand_in.set_session_id(frame_.session_id());
      stand_in.set_plan_epoch(frame_.plan_epoch());
      stand_in.set_position(frame_.position());
      frame_ = std::move(stand_in);
      bytes = kStandInBytes;
    }
    ++outstanding_;
    queued_bytes_ += bytes;
    lock.unlock();
    node_->Enqueue(std::move(frame_), channel_, bytes, std::move(refusal));
    frame_.Clear();
    lock.lock();
    if (queued_bytes_ >= node_->options().max_stream_queue_bytes) {
      paused_ = true;  // Processed resumes reading
    } else {
      StartRead(&frame_);
    }
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> lock(mutex_);
    replies_.pop_front();
    if (!ok) replies_.clear();
    if (!replies_.empty()) {
      StartWrite(&replies_.front());
    } else {
      writing_ = false;
      MaybeFinishLocked();
    }
  }

  void OnDone() override {
    channel_->Detach();
    if (counted_) node_->ReleaseStream();
    delete this;
  }

 private:
  void Processed(size_t bytes) override {
    std::lock_guard<std::mutex> lock(mutex_);
    --outstanding_;
    queued_bytes_ -= std::min(bytes, queued_bytes_);
    if (paused_ && queued_bytes_ < node_->options().max_stream_queue_bytes) {
      paused_ = false;
      StartRead(&frame_);
    }
    MaybeFinishLocked();
  }
  void Reply(v1::FrameReply reply) override {
    std::lock_guard<std::mutex> lock(mutex_);
    ReplyLocked(std::move(reply));
  }
  // Called with mutex_ held.
  void ReplyLocked(v1::FrameReply reply) {
    if (finished_) return;
    // A peer that never reads its replies cannot grow this queue without bound: past a
    // few thousand, replies are dropped (the coordinator hears of every error anyway).
    if (replies_.size() >= kMaxQueuedReplies) return;
    replies_.push_back(std::move(reply));
    if (!writing_) {
      writing_ = true;
      StartWrite(&replies_.front());
    }
  }
  void MaybeFinishLocked() {
    if (reads_done_ && outstanding_ == 0 && !writing_ && !finished_) {
      finished_ = true;
      Finish(grpc::Status::OK);
    }
  }

  static constexpr size_t kMaxQueuedReplies = 4096;
  static constexpr size_t kStandInBytes = 1024;  // what a refused frame counts in the queue
  NodeService* node_;
  const std::string peer_identity_;
  std::shared_ptr<ReplyChannel> channel_;
  v1::ActivationFrame frame_;
  std::mutex mutex_;
  std::deque<v1::FrameReply> replies_;
  bool writing_ = false;
  int outstanding_ = 0;      // frames enqueued, not yet handled
  size_t queued_bytes_ = 0;  // their bytes
  bool paused_ = false;      // not reading until the queue drains
  bool reads_done_ = false;
  bool finished_ = false;
  bool counted_ = false;  // holds one of the node's Forward stream slots
  bool logged_revoked_ = false;
};

}  // namespace

NodeService::NodeService(std::shared_ptr<const GgufFile> file, NodeOptions options,
                         std::shared_ptr<ResultsClient> results)
    : file_(std::move(file)), options_(std::move(options)), results_(std::move(results)) {
  options_.max_batch_tokens = std::max(options_.max_batch_tokens, kMaxFrameTokens);
  worker_ = std::thread([this] { WorkerLoop(); });
}

NodeService::~NodeService() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  worker_.join();
}

grpc::ServerBidiReactor<v1::ActivationFrame, v1::FrameReply>* NodeService::Forward(
    grpc::CallbackServerContext* context) {
  std::string upstream;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    upstream = upstream_identity_;
  }
  grpc::Status authorized;
  if (LinksSecure() && upstream.empty()) {
    authorized = AuthorizePeer(*context, "Forward", 0);  // not configured: nobody may send
  } else {
    authorized = AuthorizePeer(*context, "Forward", kRoleCoordinator | kRoleNode, upstream);
  }
  return new ForwardReactor(this, authorized, PeerIdentity(*context));
}

bool NodeService::IsUpstream(const std::string& identity) {
  std::lock_guard<std::mutex> lock(mutex_);
  return identity == upstream_identity_;
}

void NodeService::MeasureNextHop() {
  std::shared_ptr<v1::Node::Stub> stub;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stub = next_hop_;
  }
  double ms = 0;
  if (stub) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
    v1::PingReply reply;
    const auto t0 = std::chrono::steady_clock::now();
    if (stub->Ping(&ctx, v1::PingRequest(), &reply).ok()) {
      ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    }
  }
  metrics_.SetNextHopRttMs(ms);
}

grpc::ServerUnaryReactor* NodeService::Ping(grpc::CallbackServerContext* context,
                                            const v1::PingRequest* request, v1::PingReply* reply) {
  auto* reactor = context->DefaultReactor();
  grpc::Status authorized = AuthorizePeer(*context, "Ping", kRoleCoordinator | kRoleNode);
  if (authorized.ok()) reply->set_payload(request->payload());
  reactor->Finish(authorized);
  return reactor;
}

bool NodeService::AcquireStream() {
  if (++streams_ > options_.max_forward_streams) {
    --streams_;
    return false;
  }
  return true;
}

void NodeService::Enqueue(v1::ActivationFrame frame, std::shared_ptr<ReplyChannel> reply,
                          size_t bytes, absl::Status refusal) {
  Pending p{std::move(frame), reply, bytes, std::move(refusal), std::chrono::steady_clock::now()};
  try {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back(std::move(p));
    // Work for an idle worker: the stall clock starts now.
    if (queued_++ == 0 && running_ == 0) Progressed();
  } catch (const std::bad_alloc&) {
    v1::FrameReply r;
    r.set_code(grpc::StatusCode::RESOURCE_EXHAUSTED);
    r.set_message("the node is out of memory for queued frames");
    if (reply) {
      reply->Send(r);
      reply->Processed(bytes);
    }
    return;
  }
  cv_.notify_one();
}

void NodeService::Progressed() {
  last_progress_ns_ = std::chrono::duration_cast<std::chrono::nanoseconds>(
                          std::chrono::steady_clock::now().time_since_epoch())
                          .count();
}

uint32_t NodeService::pending_frames() const { return queued_ + running_; }

uint32_t NodeService::stalled_ms() const {
  if (writing_ || pending_frames() == 0) return 0;
  const int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                          std::chrono::steady_clock::now().time_since_epoch())
                          .count();
  return static_cast<uint32_t>(std::clamp<int64_t>((now - last_progress_ns_) / 1000000, 0,
                                                   std::numeric_limits<uint32_t>::max()));
}

void NodeService::Release(uint64_t plan_epoch, const std::string& node_id) {
  configure_worker_.Post([this, plan_epoch, node_id] {
    std::shared_ptr<ForwardClient> downstream;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!stage_ || (stage_->config().plan_epoch > plan_epoch && stage_node_id_ == node_id)) {
        return;  // no stage, or one configured after the coordinator's view was taken
      }
      std::fprintf(stderr,
                   "tandem node: not in the coordinator's plan (epoch %llu): freeing the shard of "
                   "epoch %llu and its %zu session(s)\n",
                   static_cast<unsigned long long>(plan_epoch),
                   static_cast<unsigned long long>(stage_->config().plan_epoch),
                   stage_->n_sessions());
      stage_.reset();
      downstream = std::move(downstream_);
      next_hop_.reset();
      stage_node_id_.clear();
      upstream_identity_.clear();
    }
    if (downstream) downstream->Abort();
    epoch_ = 0;
    serving_ = false;
    sessions_ = 0;
    metrics_.SetSessions(0);
    metrics_.SetShard(0, 0, 0, false);
    if (options_.set_serving) options_.set_serving(false);
  });
}

void NodeService::Done(const Pending& p) {
  if (p.reply) p.reply->Processed(p.bytes);
}

absl::Status NodeService::LoadShard(const v1::ConfigureRequest& r, uint64_t* weight_bytes) {
  if (r.protocol_version() != kProtocolVersion) {
    return absl::FailedPreconditionError(absl::StrCat("protocol version ", r.protocol_version(),
                                                      ", this node speaks ", kProtocolVersion));
  }
  StageConfig config;
  config.plan_epoch = r.plan_epoch();
  config.range = {r.layer_first(), r.layer_last()};
  config.wire_dtype = r.wire_dtype();
  config.n_ctx = r.n_ctx();
  config.lockstep_batching = r.lockstep_batching();
  config.on_layer_loaded = [this, print = LoadProgress(r.layer_first(), r.layer_last())](
                               int done, int total) {
    layers_loaded_ = static_cast<uint32_t>(done);
    print(done, total);
  };
  config.session_idle_timeout = options_.session_idle_timeout;
  std::shared_ptr<const GgufFile> file = file_;
  if (options_.stage_file) {
    auto fetched = options_.stage_file(r);
    if (!fetched.ok()) return fetched.status();
    file = *std::move(fetched);
  }
  auto stage = Stage::Create(file, config, options_.threads);
  if (!stage.ok()) return stage.status();
  *weight_bytes = (*stage)->shard().weight_bytes();
  if (!(*stage)->is_last() && r.next_hop().empty()) {
    return absl::InvalidArgumentError("a stage that is not the last needs a next hop");
  }
  std::shared_ptr<ForwardClient> downstream;
  std::shared_ptr<v1::Node::Stub> next_hop;
  if (!(*stage)->is_last()) {
    next_hop = v1::Node::NewStub(MakeChannel(r.next_hop(), r.next_hop_identity()));
    downstream = std::make_shared<ForwardClient>(
        r.next_hop(), r.next_hop_identity(), [](const v1::FrameReply& reply) {
          // The stage that rejected the frame reports it to the coordinator itself.
          std::fprintf(stderr, "tandem node: next stage rejected a frame: %s\n",
                       reply.message().c_str());
        });
  }
  std::shared_ptr<Stage> old;
  std::shared_ptr<ForwardClient> old_downstream;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    old = std::move(stage_);
    stage_ = std::move(*stage);
    old_downstream = std::move(downstream_);
    downstream_ = std::move(downstream);
    next_hop_ = std::move(next_hop);
    stage_node_id_ = r.node_id();
    sessions_ = 0;
    upstream_identity_ = r.upstream_identity();
  }
  // The old stream carries the old epoch's frames: a write blocked on it (a hung next
  // stage) returns now rather than at its deadline.
  if (old_downstream) old_downstream->Abort();
  epoch_ = r.plan_epoch();
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* NodeService::Configure(grpc::CallbackServerContext* context,
                                                 const v1::ConfigureRequest* request,
                                                 v1::ConfigureResponse* response) {
  auto* reactor = context->DefaultReactor();
  if (grpc::Status s = AuthorizePeer(*context, "Configure", kRoleCoordinator); !s.ok()) {
    reactor->Finish(s);
    return reactor;
  }
  configure_worker_.Post(
      [this, call = ConfigureCall{reactor, request, response}] { RunConfigure(call); });
  return reactor;
}

void NodeService::RunConfigure(const ConfigureCall& call) {
  if (call.request->prefetch_only()) {
    // Only the tensors into the cache: the stage in force keeps serving meanwhile.
    absl::Status s = call.request->protocol_version() == kProtocolVersion
                         ? absl::OkStatus()
                         : absl::FailedPreconditionError("protocol version mismatch");
    if (s.ok() && options_.stage_file) {
      try {
        s = options_.stage_file(*call.request).status();
      } catch (const std::bad_alloc&) {
        s = absl::ResourceExhaustedError("out of memory while fetching the shard");
      }
    }
    call.response->set_ok(s.ok());
    call.response->set_reason(std::string(s.message()));
    if (options_.describe_cache) options_.describe_cache(call.response);
    call.reactor->Finish(grpc::Status::OK);
    return;
  }
  const bool was_serving = serving_;
  serving_ = false;
  if (options_.set_serving) options_.set_serving(false);
  uint64_t weight_bytes = 0;
  layers_loaded_ = 0;
  layers_to_load_ =
      static_cast<uint32_t>(std::max(0, call.request->layer_last() - call.request->layer_first()));
  absl::Status s;
  try {
    s = LoadShard(*call.request, &weight_bytes);
  } catch (const std::bad_alloc&) {
    s = absl::ResourceExhaustedError("out of memory while loading the shard");
  }
  layers_to_load_ = 0;
  layers_loaded_ = 0;
  call.response->set_ok(s.ok());
  call.response->set_reason(std::string(s.message()));
  call.response->set_weight_bytes(weight_bytes);
  if (options_.describe_cache) options_.describe_cache(call.response);
  // A refused configuration leaves the shard in force as it was.
  serving_ = s.ok() || was_serving;
  if (s.ok()) {
    metrics_.SetShard(call.request->plan_epoch(), call.request->layer_first(),
                      call.request->layer_last(), true);
  }
  if (options_.set_serving) options_.set_serving(serving_);
  call.reactor->Finish(grpc::Status::OK);
}

void NodeService::Reject(const Pending& p, const absl::Status& status) {
  // Frames of a replaced plan, or for a next stage that is gone, are expected while the
  // cluster re-plans; anything else (a position gap, an unknown session, a bad frame) is
  // worth a line in the log.
  if (status.code() != absl::StatusCode::kFailedPrecondition &&
      status.code() != absl::StatusCode::kUnavailable) {
    // At most a few lines a second: a peer sending garbage cannot flood the log.
    const auto now = std::chrono::steady_clock::now();
    if (now - refusal_log_window_ > std::chrono::seconds(1)) {
      if (refusals_unlogged_ > 0) {
        std::fprintf(stderr, "tandem node: refused a frame: %llu more in the last second\n",
                     static_cast<unsigned long long>(refusals_unlogged_));
      }
      refusal_log_window_ = now;
      refusals_logged_ = 0;
      refusals_unlogged_ = 0;
    }
    if (refusals_logged_ < kRefusalsLoggedPerSecond) {
      ++refusals_logged_;
      std::fprintf(stderr, "tandem node: refused a frame: %s\n",
                   std::string(status.message()).c_str());
    } else {
      ++refusals_unlogged_;
    }
  }
  v1::FrameReply reply;
  reply.set_session_id(p.frame.session_id());
  reply.set_position(p.frame.position());
  reply.set_code(static_cast<int>(status.code()));
  reply.set_message(std::string(status.message()));
  if (p.reply) p.reply->Send(reply);
  v1::StepResult result;
  result.set_session_id(p.frame.session_id());
  result.set_plan_epoch(p.frame.plan_epoch());
  result.set_position(p.frame.position());
  result.set_code(static_cast<int>(status.code()));
  result.set_message(std::string(status.message()));
  ReportResult(result);
}

void NodeService::ReportResult(const v1::StepResult& result) {
  if (!results_) return;
  v1::StepResult r = result;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    r.set_node_id(stage_node_id_.empty() ? options_.node_id : stage_node_id_);
  }
  writing_ = true;
  absl::Status s = results_->Send(r);
  writing_ = false;
  Progressed();
  if (!s.ok()) std::fprintf(stderr, "tandem node: %s\n", std::string(s.message()).c_str());
}

namespace {

// Continuous batching. The sessions of the last batch send their next frames within a
// moment of each other; waiting briefly for them turns many one-session products into one
// batched product. The wait is a fraction of the last batch's compute time, capped, so a
// lone session is barely delayed.
constexpr int kGatherFractionOfBatch = 4;  // wait up to 1/4 of the last batch's time...
constexpr auto kMaxGatherWait = std::chrono::milliseconds(2);  // ...and never longer
// Lockstep (every stage on one machine's cores): the first stage waits for every session
// that sent a frame recently, so whole batches flow down the pipeline and the stages take
// turns on the cores. "Recently" spans a few tokens' time of a small model on a slow link;
// the wait is longer than a token's round trip through the pipeline on one machine.
constexpr auto kLockstepActiveHorizon = std::chrono::milliseconds(250);
constexpr auto kLockstepGatherWait = std::chrono::milliseconds(50);

}  // namespace

bool NodeService::Gather(std::unique_lock<std::mutex>& lock) {
  // Idle sessions are looked for a few times per timeout, and at least every few seconds.
  const auto expiry_period = std::clamp<std::chrono::steady_clock::duration>(
      options_.session_idle_timeout / 4, std::chrono::milliseconds(10), std::chrono::seconds(5));
  for (;;) {
    const auto now = std::chrono::steady_clock::now();
    if (stage_ && now >= next_expiry_) {
      next_expiry_ = now + expiry_period;
      if (const size_t n = stage_->ExpireIdle(now); n > 0) {
        std::fprintf(stderr, "tandem node: forgot %zu idle session(s)\n", n);
        sessions_ = static_cast<uint32_t>(stage_->n_sessions());
        metrics_.SetSessions(stage_->n_sessions());
      }
    }
    if (stop_) return false;
    if (!queue_.empty()) break;
    cv_.wait_until(lock, next_expiry_ > now ? next_expiry_ : now + expiry_period);
  }
  // Only the first stage waits in lockstep: a later stage waiting for sessions that sit
  // upstream of it would stall both.
  const auto now = std::chrono::steady_clock::now();
  size_t expected = last_batch_sessions_;
  auto window = gather_window_;
  if (stage_ && stage_->config().lockstep_batching && stage_->is_first()) {
    expected = stage_->ActiveSessions(now, kLockstepActiveHorizon);
    window = kLockstepGatherWait;
  }
  if (expected <= 1) return true;
  const auto deadline = now + window;
  auto distinct = [&] {
    absl::flat_hash_set<uint64_t> ids;
    for (const auto& p : queue_) ids.insert(p.frame.session_id());
    return ids.size();
  };
  while (!stop_ && distinct() < expected &&
         cv_.wait_until(lock, deadline) != std::cv_status::timeout) {
  }
  return !stop_;
}

NodeService::Batch NodeService::TakeBatch() {
  Batch batch;
  batch.stage = stage_;
  batch.downstream = downstream_;
  // At most one frame per session per batch, and a session's frames stay in order: once a
  // session has a frame left behind, its later frames wait too.
  absl::flat_hash_set<uint64_t> taken, blocked;
  int tokens = 0;
  for (auto it = queue_.begin(); it != queue_.end();) {
    const uint64_t sid = it->frame.session_id();
    // No frame may exceed a batch on its own, the first of a batch included.
    const bool too_long = it->refusal.ok() && it->frame.n_tokens() > options_.max_batch_tokens;
    if (blocked.contains(sid) || taken.contains(sid) ||
        (!too_long && tokens + it->frame.n_tokens() > options_.max_batch_tokens)) {
      blocked.insert(sid);
      ++it;
      continue;
    }
    absl::Status s = !it->refusal.ok() ? it->refusal
                     : too_long
                         ? absl::ResourceExhaustedError(absl::StrCat(
                               "session ", sid, ": frame of ", it->frame.n_tokens(),
                               " tokens exceeds the node's batch of ", options_.max_batch_tokens))
                     : batch.stage ? batch.stage->Admit(it->frame)
                                   : absl::UnavailableError("the node has no shard configured yet");
    if (!s.ok()) {
      batch.rejected.emplace_back(std::move(*it), s);
    } else if (it->frame.end_session()) {
      batch.ends.push_back(std::move(*it));
    } else {
      taken.insert(sid);
      tokens += it->frame.n_tokens();
      batch.frames.push_back(std::move(*it));
    }
    it = queue_.erase(it);
  }
  return batch;
}

void NodeService::Dispatch(Batch& batch) {
  for (auto& [p, s] : batch.rejected) {
    Reject(p, s);
    Done(p);
  }
  for (auto& p : batch.ends) {
    if (batch.downstream) {
      writing_ = true;
      (void)batch.downstream->Send(p.frame);
      writing_ = false;
      Progressed();
    }
    Done(p);
  }
  if (batch.frames.empty()) return;

  std::vector<const v1::ActivationFrame*> frames;
  for (const auto& p : batch.frames) frames.push_back(&p.frame);
  const auto batch_start = std::chrono::steady_clock::now();
  int64_t tokens = 0;
  for (const auto& p : batch.frames) {
    metrics_.Queued(batch_start - p.arrived);
    tokens += p.frame.n_tokens();
  }
  std::vector<StageOutput> outputs;
  try {
    outputs = batch.stage->RunBatch(frames);
  } catch (const std::bad_alloc&) {
    // Out of memory for this batch: its sessions end (their caches may be half written);
    // the node and every other session go on.
    for (const auto& p : batch.frames) {
      {
        std::lock_guard<std::mutex> lock(mutex_);
        batch.stage->Drop(p.frame.session_id());
      }
      Reject(p,
             absl::ResourceExhaustedError(absl::StrCat(
                 "session ", p.frame.session_id(), ": the node ran out of memory for this batch")));
      Done(p);
    }
    return;
  }
  Progressed();
  {
    const auto took = std::chrono::steady_clock::now() - batch_start;
    metrics_.Ran(batch.frames.size(), tokens, took);
    metrics_.SetSessions(batch.stage->n_sessions());
    std::lock_guard<std::mutex> lock(mutex_);
    last_batch_sessions_ = batch.frames.size();
    gather_window_ = std::min<std::chrono::steady_clock::duration>(took / kGatherFractionOfBatch,
                                                                   kMaxGatherWait);
  }
  for (size_t i = 0; i < batch.frames.size(); ++i) {
    const auto& f = batch.frames[i].frame;
    if (!batch.stage->is_last()) {
      writing_ = true;
      absl::Status s = batch.downstream->Send(outputs[i].frame);
      writing_ = false;
      Progressed();
      if (!s.ok()) Reject(batch.frames[i], s);
      if (s.ok()) metrics_.Sent(outputs[i].frame.ByteSizeLong());
    } else if (outputs[i].has_token) {
      v1::StepResult r;
      r.set_session_id(f.session_id());
      r.set_plan_epoch(f.plan_epoch());
      r.set_position(outputs[i].token_position);
      r.set_token(outputs[i].token);
      if (f.sampling().logprobs()) {
        r.set_logprob(outputs[i].logprob);
        for (const TokenLogprob& t : outputs[i].top_logprobs) {
          v1::TokenLogprob* out = r.add_top_logprobs();
          out->set_token(t.token);
          out->set_logprob(t.logprob);
        }
      }
      ReportResult(r);
    }
  }
  for (const auto& p : batch.frames) Done(p);
}

void NodeService::WorkerLoop() {
  for (;;) {
    Batch batch;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      if (!Gather(lock)) return;
      batch = TakeBatch();
      sessions_ = batch.stage ? static_cast<uint32_t>(batch.stage->n_sessions()) : 0;
      queued_ = static_cast<uint32_t>(queue_.size());
      running_ =
          static_cast<uint32_t>(batch.frames.size() + batch.rejected.size() + batch.ends.size());
      metrics_.SetSessions(sessions_);
    }
    Progressed();
    Dispatch(batch);
    running_ = 0;
  }
}

}  // namespace tandem
