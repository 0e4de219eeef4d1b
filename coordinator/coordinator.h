// The coordinator: registry of nodes, the plan and its epochs, sessions with their token
// history, and the driving of each session through the pipeline. It reaches nodes only
// through a NodeLink, and its gRPC faces (coordinator/services.h) are thin reactors, so a
// test drives all of it in one process (coordinator/coordinator_test.cc).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "coordinator/planning.h"
#include "coordinator/registry.h"
#include "coordinator/session.h"
#include "coordinator/telemetry.h"
#include "model/gguf.h"
#include "model/hparams.h"
#include "model/tokenizer.h"
#include "net/node_link.h"
#include "partition/profile.h"
#include "tandem.pb.h"

namespace tandem {

// How stages gather sessions into batches.
enum class BatchingMode {
  kAuto,       // lockstep when every stage shares one host, else pipelined
  kLockstep,   // the first stage waits for every active session (stages share cores)
  kPipelined,  // every stage runs what has arrived
};

struct CoordinatorOptions {
  std::string model_path;
  int min_nodes = 1;
  PlanningOptions planning;
  v1::WireDtype wire_dtype = v1::WIRE_DTYPE_F32;
  int64_t n_ctx = 0;  // 0: the model's training context
  BatchingMode batching = BatchingMode::kAuto;
  std::chrono::milliseconds heartbeat_interval{500};
  std::chrono::milliseconds node_timeout{3000};
  // Liveness by progress: a session of the plan in force that has had no token for this
  // long makes the coordinator look for the stage that holds it up (a node that reports
  // work it has not progressed for this long; a heartbeat late by four intervals is
  // enough sooner, once a session has waited as long). That node is fenced:
  // left out of plans for a backoff (2 s, doubling, at most a minute) and its layers move.
  // With no stage to blame while every stage is idle, the work was lost on the way: the
  // plan is applied again under a new epoch. Either way the sessions replay.
  std::chrono::milliseconds stall_timeout{3000};
  // A request waits this long for a cluster that is not ready yet...
  std::chrono::milliseconds ready_wait{30000};
  // ...and a running session this long for its next token (through re-plans).
  std::chrono::milliseconds stall_limit{120000};
  // A background thread calls Tick() this often; tests turn it off and call Tick().
  bool background_planner = true;
  std::chrono::milliseconds planner_interval{100};
  // Whether a node's certificate identity is revoked (`tandem cluster revoke`): a revoked
  // node leaves the cluster at the next tick, as a dead one does, so no user's activations
  // reach it while it waits for its heartbeat timeout. Null: nothing is revoked.
  std::function<bool(const std::string& identity)> is_revoked;
  // The clock heartbeats and waits are judged by (tests pass a fake one).
  std::function<std::chrono::steady_clock::time_point()> now = [] {
    return std::chrono::steady_clock::now();
  };
};

class Coordinator {
 public:
  static absl::StatusOr<std::unique_ptr<Coordinator>> Create(CoordinatorOptions options,
                                                             std::unique_ptr<NodeLink> link);
  ~Coordinator();

  // Node-facing. `identity` is the caller's certificate name (empty on plaintext links):
  // a node's record is bound to it, so one node cannot heartbeat or report results for
  // another. Register measures the node's round trip (a second at most; with an identity,
  // a node that does not answer at its address with that certificate is refused); the
  // others never block.
  v1::RegisterResponse Register(const v1::RegisterRequest& request,
                                const std::string& identity = "");
  v1::HeartbeatResponse Heartbeat(const v1::HeartbeatRequest& request,
                                  const std::string& identity = "");
  // A result for a session's next position is applied; results for sessions or plans
  // that ended are ignored; a result for any other position is refused with an error, and
  // so is one (with an identity) from a node that is not the stage it claims to be, or a
  // token from any but the last stage (PERMISSION_DENIED).
  absl::Status OnResult(const v1::StepResult& result, const std::string& identity = "");
  v1::StatusResponse Status();

  // Client-facing: checks the request and starts a session (it waits for the cluster when
  // none is ready yet). Its events go to `listener`. At most the plan's reserved number of
  // sessions run at once; beyond, RESOURCE_EXHAUSTED. The prompt is plain text (special
  // tokens in it are not parsed) and is measured before it is tokenized.
  absl::StatusOr<std::shared_ptr<Session>> StartSession(const v1::GenerateRequest& request,
                                                        Session::Listener listener);
  // The same for a request already in token ids (the HTTP API renders chat templates and
  // tokenizes itself).
  absl::StatusOr<std::shared_ptr<Session>> StartSession(GenerationRequest request,
                                                        Session::Listener listener);
  // Ends a session and frees its state on every stage; no more events come.
  void CancelSession(uint64_t id);
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  const GgufFile& model_file() const { return *file_; }
  const std::string& model_path() const { return options_.model_path; }
  int64_t n_ctx() const { return n_ctx_; }
  // A plan serves (sessions start at once); otherwise why not.
  bool ready();
  std::string not_ready_reason();
  size_t active_sessions();
  // Sessions ended by CancelSession (a client went away or had enough) since the start.
  uint64_t cancelled_sessions();

  // One pass of the planner: expires silent nodes, (re)plans and configures when the
  // nodes changed, replays sessions on a new plan, and fails sessions that waited too long.
  void Tick();
  // Blocks until every frame handed to the sender has been sent (tests).
  void Flush();

  // Where the HTTP API serves (HOST:PORT), for Status() to tell clients such as `tandem chat`.
  void set_http_address(std::string address);

  // Events, counters and rates (coordinator/telemetry.h): metrics_text() for /metrics;
  // Status() carries the rest.
  ClusterTelemetry& telemetry() { return telemetry_; }
  std::string metrics_text() const { return telemetry_.MetricsText(); }

 private:
  struct Outgoing {
    std::shared_ptr<FrameSink> head;
    v1::ActivationFrame frame;
  };
  Coordinator(CoordinatorOptions options, std::unique_ptr<NodeLink> link);
  // Configures every stage; on failure `failed_node` names the node that failed.
  absl::Status ApplyPlan(const ClusterPlan& plan, uint64_t epoch, std::string* failed_node);
  std::function<bool()> StillBeating(const std::string& id);
  // The Configure request of stage i of `plan`.
  v1::ConfigureRequest StageRequest(const ClusterPlan& plan, size_t i, uint64_t epoch,
                                    bool lockstep, const std::vector<NodeRecord>& alive) const;
  // Has the stages of nodes without the model file fetch their tensors, concurrently (at
  // most kMaxConcurrentFetches at once), without changing what they serve.
  // What a node without the model file said its cache holds after a Configure.
  void NoteCache(const std::string& id, const v1::ConfigureResponse& r);
  void PrefetchStages(const ClusterPlan& plan, uint64_t epoch, bool lockstep,
                      const std::vector<NodeRecord>& alive);
  static constexpr size_t kMaxConcurrentFetches = 8;
  // Frames that feed history[from, end) to the first stage, the last one sampling.
  std::vector<v1::ActivationFrame> StepFrames(const Session& s, int64_t from) const;
  // Hands frames to the sender thread: a reader thread never blocks on a write.
  void Send(std::vector<v1::ActivationFrame> frames, std::shared_ptr<FrameSink> head);
  void SenderLoop();
  // Ends the session with `status` and frees its state on every stage.
  void FailSession(uint64_t id, const absl::Status& status);
  void FailStalledSessions();
  void ReplanIfNeeded();
  // Liveness by progress (CoordinatorOptions::stall_timeout): fences the stages that hold
  // up sessions, or asks for the plan to be applied again.
  void CheckProgress();
  // Leaves a node out of plans for its backoff. Called without mutex_.
  void FenceNode(const std::string& id, const std::string& why);
  // Nodes silent for more than a heartbeat and a half whose address refuses a connection:
  // their process is gone, and they are dead now rather than at the heartbeat timeout.
  std::vector<std::string> RefusingSilentNodes();
  // Live nodes whose identity is revoked.
  std::vector<NodeRecord> RevokedNodes() const;
  bool UseLockstep(const ClusterPlan& plan) const;
  // Session and node gauges for the telemetry. Called with mutex_ held.
  void RecordGaugesLocked();
  // RESOURCE_EXHAUSTED when the sessions the plan reserves are all taken. Called with
  // mutex_ held.
  absl::Status AdmitSessionLocked() const;

  CoordinatorOptions options_;
  std::unique_ptr<NodeLink> link_;
  std::shared_ptr<const GgufFile> file_;
  Hparams hparams_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::string fingerprint_;
  partition::ModelProfile profile_;
  int64_t n_ctx_ = 0;
  int64_t chunk_tokens_ = 1;
  int64_t max_prompt_bytes_ = 0;
  Registry registry_;
  ClusterTelemetry telemetry_;

  std::mutex mutex_;  // guards what follows
  bool ready_ = false;
  std::string not_ready_reason_ = "waiting for nodes";
  uint64_t epoch_ = 0;
  std::vector<std::string> planned_nodes_;  // the plannable node ids the plan was made for
  ClusterPlan plan_;
  bool applying_ = false;         // a plan is being configured
  uint64_t attempted_epoch_ = 0;  // the newest epoch handed to any node
  bool reapply_ = false;          // apply the plan again under a new epoch (fence)
  std::string reapply_reason_;
  // Heartbeats in a row from a plan node that disagreed with the plan (epoch, serving).
  absl::flat_hash_map<std::string, int> disagreements_;
  // Nodes named by a stage that could not reach them in the current epoch.
  std::vector<std::string> unreachable_;
  std::chrono::steady_clock::time_point last_fence_{};
  std::atomic<uint64_t> current_epoch_{0};  // epoch_, for the sender thread
  std::shared_ptr<FrameSink> head_;
  absl::flat_hash_map<uint64_t, std::shared_ptr<Session>> sessions_;
  uint64_t cancelled_sessions_ = 0;
  std::string http_address_;
  // Session ids are drawn at random from the OS: a node or client cannot guess another's
  // session.
  std::random_device session_ids_;

  std::mutex outbox_mutex_;  // guards the outbox
  std::condition_variable outbox_cv_;
  std::deque<Outgoing> outbox_;
  int sending_ = 0;
  bool outbox_stop_ = false;
  std::thread sender_;

  // When each node was last probed (the planner thread's own).
  absl::flat_hash_map<std::string, std::chrono::steady_clock::time_point> probed_;

  std::atomic<bool> stop_{false};
  std::thread planner_;
};

}  // namespace tandem
