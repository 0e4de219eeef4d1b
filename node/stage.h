// One pipeline stage: a shard of layers with the sessions that pass through it. Frames
// are validated against the plan epoch, the session's position and the model's shapes
// before anything is applied; several sessions' frames run as one batch.
// No networking here: the node service feeds frames in and ships the outputs.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "net/frames.h"
#include "node/forward.h"
#include "node/kernels/thread_pool.h"
#include "node/model_shard.h"
#include "tandem.pb.h"

namespace tandem {

struct StageConfig {
  uint64_t plan_epoch = 0;
  LayerRange range;
  v1::WireDtype wire_dtype = v1::WIRE_DTYPE_F32;
  int64_t n_ctx = 0;
  int max_sessions = 256;
  bool lockstep_batching = false;
  // Progress while the shard loads (ShardOptions::on_layer).
  std::function<void(int layers_done, int layers_total)> on_layer_loaded;
  // A session that sends no frame for this long is forgotten (ExpireIdle): a lost
  // end_session or a peer that walked away cannot pin a KV cache for ever.
  std::chrono::steady_clock::duration session_idle_timeout = std::chrono::minutes(5);
};

// What a stage produces for one frame: activations for the next stage, or a token.
struct StageOutput {
  v1::ActivationFrame frame;  // to the next stage (not last stage)
  bool has_token = false;     // last stage, when the frame asked to sample
  int32_t token = 0;
  int64_t token_position = 0;
  // When the sampling parameters ask for them (see node/sampler.h Logprobs).
  float logprob = 0;
  std::vector<TokenLogprob> top_logprobs;
};

class Stage {
 public:
  static absl::StatusOr<std::unique_ptr<Stage>> Create(std::shared_ptr<const GgufFile> file,
                                                       const StageConfig& config, int threads);

  const StageConfig& config() const { return config_; }
  const ModelShard& shard() const { return *shard_; }
  ThreadPool& pool() { return pool_; }
  bool is_first() const { return shard_->has_embedding(); }
  bool is_last() const { return shard_->has_head(); }
  size_t n_sessions() const { return sessions_.size(); }
  // Sessions that sent a frame within `horizon` of `now`.
  size_t ActiveSessions(std::chrono::steady_clock::time_point now,
                        std::chrono::steady_clock::duration horizon) const;

  // Checks a frame against the stage and the session's state and, when it is good,
  // advances the session's expected position (frames are admitted in arrival order).
  // The status code says what is wrong: FAILED_PRECONDITION (protocol version, stale
  // epoch), NOT_FOUND (unknown session), OUT_OF_RANGE (position gap, past the context),
  // INVALID_ARGUMENT (shape, token ids, sampling), RESOURCE_EXHAUSTED (oversized frame,
  // too many sessions, too many tokens, no memory for a KV cache). An end_session frame
  // frees the session at once.
  absl::Status Admit(const v1::ActivationFrame& frame);

  // Runs admitted frames (at most one per session) as one batch. Throws std::bad_alloc
  // when scratch memory runs out; the caller rejects the batch and Drops its sessions.
  std::vector<StageOutput> RunBatch(const std::vector<const v1::ActivationFrame*>& frames);

  // Forgets a session (its KV cache may be half written).
  void Drop(uint64_t session_id) { sessions_.erase(session_id); }
  // Forgets sessions idle for longer than config().session_idle_timeout; returns how many.
  size_t ExpireIdle(std::chrono::steady_clock::time_point now);

  // Last stage: the logits (n_vocab) of the latest sampled position.
  const std::vector<float>& last_logits() const { return logits_; }

 private:
  struct Session {
    std::unique_ptr<KvCache> cache;
    int64_t next_position = 0;  // admitted up to here
    std::chrono::steady_clock::time_point last_frame;
  };
  Stage(std::unique_ptr<ModelShard> shard, const StageConfig& config, int threads);

  StageConfig config_;
  std::unique_ptr<ModelShard> shard_;
  ThreadPool pool_;
  Forward forward_;
  absl::flat_hash_map<uint64_t, Session> sessions_;
  std::vector<float> x_;       // (batch tokens, n_embd)
  std::vector<float> logits_;  // (batch rows, n_vocab)
};

}  // namespace tandem
