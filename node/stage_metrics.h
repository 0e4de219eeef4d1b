// What a node measures about its stage: frames and tokens run, time spent computing and
// waiting in the queue, bytes sent to the next stage, the round trip to it, sessions held.
// Prometheus metrics for the node's own /metrics (`tandem node --metrics`), read back as
// cumulative counters for the heartbeat (the coordinator turns them into rates).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "tandem.pb.h"

namespace tandem {

class StageMetrics {
 public:
  StageMetrics();
  StageMetrics(const StageMetrics&) = delete;
  StageMetrics& operator=(const StageMetrics&) = delete;

  // A frame waited this long between arriving and its batch starting.
  void Queued(std::chrono::steady_clock::duration waited);
  // A batch of `frames` frames holding `tokens` token positions ran in `took`.
  void Ran(size_t frames, int64_t tokens, std::chrono::steady_clock::duration took);
  void Sent(size_t bytes);
  void SetSessions(size_t sessions);
  // 0: no next stage, or it did not answer.
  void SetNextHopRttMs(double ms);
  void SetShard(uint64_t plan_epoch, int layer_first, int layer_last, bool serving);

  v1::StageCounters Counters() const;
  std::string MetricsText() const;

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Counter& frames_;
  prometheus::Counter& tokens_;
  prometheus::Counter& compute_seconds_;
  prometheus::Counter& queue_seconds_;
  prometheus::Counter& bytes_sent_;
  prometheus::Histogram& batch_seconds_;
  prometheus::Histogram& queue_wait_seconds_;
  prometheus::Gauge& sessions_;
  prometheus::Gauge& next_hop_rtt_seconds_;
  prometheus::Gauge& plan_epoch_;
  prometheus::Gauge& layer_first_;
  prometheus::Gauge& layer_last_;
  prometheus::Gauge& serving_;
};

}  // namespace tandem
