// The coordinator: registry of nodes, the plan and its epochs, sessions with their token
// history, and the driving of each session through the pipeline. Its gRPC faces (the
// Coordinator service for nodes, the Client service for users) are thin wrappers.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "coordinator/planning.h"
#include "coordinator/registry.h"
#include "coordinator/session.h"
#include "model/gguf.h"
#include "model/hparams.h"
#include "model/tokenizer.h"
#include "net/forward_client.h"
#include "partition/profile.h"
#include "tandem.pb.h"

namespace tandem {

struct CoordinatorOptions {
  std::string model_path;
  int min_nodes = 1;
  PlanningOptions planning;
  v1::WireDtype wire_dtype = v1::WIRE_DTYPE_F32;
  int64_t n_ctx = 0;  // 0: the model's training context
  // Lockstep batching for stages that share one machine's cores: "auto" (when every
  // stage's host is the same), "lockstep" or "pipelined".
  std::string batching = "auto";
  std::chrono::milliseconds heartbeat_interval{500};
  std::chrono::milliseconds node_timeout{3000};
};

class Coordinator {
 public:
  static absl::StatusOr<std::unique_ptr<Coordinator>> Create(CoordinatorOptions options);
  ~Coordinator();

  // Node-facing.
  v1::RegisterResponse Register(const v1::RegisterRequest& request);
  bool Heartbeat(const v1::HeartbeatRequest& request);
  void OnResult(const v1::StepResult& result);
  v1::StatusResponse Status();

  // Client-facing: starts a session. Events arrive on the returned session.
  absl::StatusOr<std::shared_ptr<Session>> StartSession(const v1::GenerateRequest& request,
                                                        std::vector<int32_t>* prompt_ids);
  void CancelSession(uint64_t id);
  const Tokenizer& tokenizer() const { return *tokenizer_; }

 private:
  explicit Coordinator(CoordinatorOptions options)
      : options_(std::move(options)), registry_(options_.node_timeout) {}
  void PlannerLoop();
  absl::Status ApplyPlan(const ClusterPlan& plan, uint64_t epoch);
  // Frames that feed history[from, end) to the first stage, the last one sampling.
  std::vector<v1::ActivationFrame> StepFrames(const Session& s, int64_t from) const;
  void Send(const std::vector<v1::ActivationFrame>& frames, std::shared_ptr<ForwardClient> head);
  void FailSession(uint64_t id, const absl::Status& status);

  CoordinatorOptions options_;
  std::shared_ptr<const GgufFile> file_;
  Hparams hparams_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::string fingerprint_;
  partition::ModelProfile profile_;
  int64_t n_ctx_ = 0;
  int64_t chunk_tokens_ = 1;
  Registry registry_;

  std::mutex mutex_;  // guards what follows
  bool ready_ = false;
  std::string not_ready_reason_ = "waiting for nodes";
  uint64_t epoch_ = 0;
  uint64_t planned_generation_ = 0;  // the registry's generation the plan was made for
  ClusterPlan plan_;
  std::shared_ptr<ForwardClient> head_;
  absl::flat_hash_map<uint64_t, std::shared_ptr<Session>> sessions_;
  uint64_t next_session_id_ = 1;

  std::atomic<bool> stop_{false};
  std::thread planner_;
};

}  // namespace tandem
