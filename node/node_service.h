// The Node gRPC service: Configure loads a shard for a plan epoch; Forward streams carry
// activation frames in from the previous stage (or the coordinator). One worker thread
// takes whatever frames are waiting, validates them in arrival order, runs them as one
// batch and ships the outputs: activations to the next stage, tokens to the coordinator.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "base/work_queue.h"
#include "model/gguf.h"
#include "net/forward_client.h"
#include "net/results_client.h"
#include "node/stage.h"
#include "node/stage_metrics.h"
#include "tandem.grpc.pb.h"

namespace tandem {

class ReplyChannel;

struct NodeOptions {
  int threads = 1;
  std::string node_id;
  // Tokens one batch may hold; every frame counts, the first of a batch too. Raised to
  // kMaxFrameTokens when lower, so that a legitimate prefill chunk always fits.
  int max_batch_tokens = 512;
  // Flow control: a Forward stream stops reading while this many bytes of its frames wait
  // in the queue, and the node serves at most this many Forward streams at once. Together
  // they bound the queued frames' memory (16 x 4 MiB).
  size_t max_stream_queue_bytes = 4 << 20;
  int max_forward_streams = 16;
  // Sessions silent for this long are forgotten on this stage.
  std::chrono::steady_clock::duration session_idle_timeout = std::chrono::minutes(5);
  // Told whether the node serves (grpc.health.v1): false while a shard loads.
  std::function<void(bool)> set_serving;
  // A node without the model file: the model a stage of the request's layers reads (its
  // tensors fetched first, fetch/model_fetcher.h). Unset: the file the service was given.
  std::function<absl::StatusOr<std::shared_ptr<const GgufFile>>(const v1::ConfigureRequest&)>
      stage_file;
  // A node without the model file: says in a Configure's answer what its cache holds now.
  std::function<void(v1::ConfigureResponse*)> describe_cache;
};

class NodeService final : public v1::Node::CallbackService {
 public:
  NodeService(std::shared_ptr<const GgufFile> file, NodeOptions options,
              std::shared_ptr<ResultsClient> results);
  ~NodeService() override;

  grpc::ServerUnaryReactor* Configure(grpc::CallbackServerContext* context,
                                      const v1::ConfigureRequest* request,
                                      v1::ConfigureResponse* response) override;
  grpc::ServerUnaryReactor* Ping(grpc::CallbackServerContext* context,
                                 const v1::PingRequest* request, v1::PingReply* reply) override;
  grpc::ServerBidiReactor<v1::ActivationFrame, v1::FrameReply>* Forward(
      grpc::CallbackServerContext* context) override;

  uint64_t plan_epoch() const { return epoch_.load(); }
  bool serving() const { return serving_.load(); }
  StageMetrics& metrics() { return metrics_; }
  // While a shard loads: layers done and to do (0, 0 otherwise).
  uint32_t layers_loaded() const { return layers_loaded_.load(); }
  uint32_t layers_to_load() const { return layers_to_load_.load(); }
  // Pings the next stage and records the round trip (blocks up to half a second).
  void MeasureNextHop();
  // Sessions the stage holds state for, as of the last batch taken.
  uint32_t sessions() const { return sessions_.load(); }
  // Liveness by progress, for the heartbeat: frames queued or running, and how long the
  // worker has held work without finishing any (0 while idle or while it waits on a write:
  // a slow next stage or coordinator is theirs to answer for, not this node's).
  uint32_t pending_frames() const;
  uint32_t stalled_ms() const;
  // The coordinator's view (from a heartbeat reply): when this node has no stage in its
  // plan, a shard of an epoch up to `plan_epoch`, or one configured for another node id
  // (an earlier registration, a coordinator that restarted), is freed with its sessions.
  void Release(uint64_t plan_epoch, const std::string& node_id);

  // Frames from a Forward stream (or a test) enter here. `bytes` is what the frame counts
  // against its stream's queue budget (given back through ReplyChannel::Processed).
  // A frame with a `refusal` is rejected with it in its turn (the stream refused it).
  void Enqueue(v1::ActivationFrame frame, std::shared_ptr<ReplyChannel> reply, size_t bytes = 0,
               absl::Status refusal = absl::OkStatus());

  const NodeOptions& options() const { return options_; }
  // Forward streams open now; false when the limit is reached (the stream is refused).
  bool AcquireStream();
  // True when `identity` is the configured stage before this one (the coordinator for the
  // first stage); always on plaintext links, where every identity is empty.
  bool IsUpstream(const std::string& identity);
  void ReleaseStream() { --streams_; }

 private:
  struct Pending {
    v1::ActivationFrame frame;
    std::shared_ptr<ReplyChannel> reply;
    size_t bytes = 0;
    absl::Status refusal;
    std::chrono::steady_clock::time_point arrived;
  };
  // What one pass of the worker takes from the queue.
  struct Batch {
    std::vector<Pending> frames;  // admitted, at most one per session
    std::vector<std::pair<Pending, absl::Status>> rejected;
    std::vector<Pending> ends;  // end_session frames, passed downstream
    std::shared_ptr<Stage> stage;
    std::shared_ptr<ForwardClient> downstream;
  };
  struct ConfigureCall {
    grpc::ServerUnaryReactor* reactor;
    const v1::ConfigureRequest* request;
    v1::ConfigureResponse* response;
  };
  void WorkerLoop();
  void RunConfigure(const ConfigureCall& call);
  // Waits for frames and, while batching, briefly for the sessions expected to send next.
  // False when stopping. Called with mutex_ held.
  bool Gather(std::unique_lock<std::mutex>& lock);
  // Takes a batch from the queue: admits each frame on the stage in arrival order, within
  // max_batch_tokens. Called with mutex_ held.
  Batch TakeBatch();
  // Runs the batch and ships its outputs: activations downstream, tokens to the coordinator.
  void Dispatch(Batch& batch);
  void Reject(const Pending& p, const absl::Status& status);
  // Tells the frame's stream it was handled (its bytes leave the stream's budget).
  static void Done(const Pending& p);
  void ReportResult(const v1::StepResult& result);
  // The worker made progress (finished a batch or a write) or took on work when idle.
  void Progressed();
  absl::Status LoadShard(const v1::ConfigureRequest& request, uint64_t* weight_bytes);

  std::shared_ptr<const GgufFile> file_;
  NodeOptions options_;
  std::shared_ptr<ResultsClient> results_;

  std::atomic<uint64_t> epoch_{0};
  std::atomic<bool> serving_{false};
  StageMetrics metrics_;
  std::atomic<uint32_t> layers_loaded_{0};
  std::atomic<uint32_t> layers_to_load_{0};
  std::atomic<int> streams_{0};
  std::atomic<uint32_t> sessions_{0};
  std::atomic<uint32_t> queued_{0};   // frames in queue_
  std::atomic<uint32_t> running_{0};  // frames of the batch being run and dispatched
  std::atomic<bool> writing_{false};  // the worker waits on a write to a peer
  std::atomic<int64_t> last_progress_ns_{0};

  std::mutex mutex_;  // guards everything below
  std::condition_variable cv_;
  std::deque<Pending> queue_;
  std::shared_ptr<Stage> stage_;
  std::shared_ptr<ForwardClient> downstream_;
  std::shared_ptr<v1::Node::Stub> next_hop_;  // for Ping; null on the last stage
  std::string stage_node_id_;                 // the node id the stage was configured for
  std::string upstream_identity_;             // who may Forward to this stage
  bool stop_ = false;
  size_t last_batch_sessions_ = 0;
  std::chrono::steady_clock::duration gather_window_{0};
  std::chrono::steady_clock::time_point next_expiry_;
  std::thread worker_;
  // Refused frames logged in the current second (worker thread only).
  static constexpr int kRefusalsLoggedPerSecond = 5;
  std::chrono::steady_clock::time_point refusal_log_window_{};
  int refusals_logged_ = 0;
  uint64_t refusals_unlogged_ = 0;
  // Configure calls run one at a time on their own worker: loading a shard takes long and
  // must not hold a gRPC thread. Last, so it stops first.
  WorkQueue configure_worker_;
};

}  // namespace tandem
