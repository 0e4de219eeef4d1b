#include "node/stage_metrics.h"

#include <algorithm>

#include "telemetry/exposition.h"

namespace tandem {
namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;

double Seconds(std::chrono::steady_clock::duration d) {
  return std::max(0.0, std::chrono::duration<double>(d).count());
}

prometheus::Counter& Counter(prometheus::Registry& r, const char* name, const char* help) {
  return BuildCounter().Name(name).Help(help).Register(r).Add({});
}

prometheus::Gauge& Gauge(prometheus::Registry& r, const char* name, const char* help) {
  return BuildGauge().Name(name).Help(help).Register(r).Add({});
}

prometheus::Histogram& Histogram(prometheus::Registry& r, const char* name, const char* help) {
  return BuildHistogram().Name(name).Help(help).Register(r).Add(
      {}, prometheus::Histogram::BucketBoundaries{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                  0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1});
}

}  // namespace

StageMetrics::StageMetrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      frames_(Counter(*registry_, "tandem_node_frames_total", "Activation frames the stage ran")),
      tokens_(Counter(*registry_, "tandem_node_tokens_total",
                      "Token positions the stage ran (a prefill chunk counts each)")),
      compute_seconds_(Counter(*registry_, "tandem_node_compute_seconds_total",
                               "Time the stage spent running batches")),
      queue_seconds_(Counter(*registry_, "tandem_node_queue_seconds_total",
                             "Time frames waited between arriving and their batch")),
      bytes_sent_(Counter(*registry_, "tandem_node_bytes_sent_total",
                          "Bytes of activation frames sent to the next stage")),
      batch_seconds_(Histogram(*registry_, "tandem_node_batch_seconds", "Time to run one batch")),
      queue_wait_seconds_(Histogram(*registry_, "tandem_node_queue_wait_seconds",
                                    "Time one frame waited before its batch")),
      sessions_(Gauge(*registry_, "tandem_node_sessions", "Sessions the stage holds")),
      next_hop_rtt_seconds_(Gauge(*registry_, "tandem_node_next_hop_rtt_seconds",
                                  "Latest Ping round trip to the next stage (0: none)")),
      plan_epoch_(Gauge(*registry_, "tandem_node_plan_epoch", "The plan epoch the node serves")),
      layer_first_(Gauge(*registry_, "tandem_node_layer_first", "First layer of the shard")),
      layer_last_(
          Gauge(*registry_, "tandem_node_layer_last", "Last layer of the shard, exclusive")),
      serving_(Gauge(*registry_, "tandem_node_serving", "1 when the node serves a shard")) {}

void StageMetrics::Queued(std::chrono::steady_clock::duration waited) {
  queue_seconds_.Increment(Seconds(waited));
  queue_wait_seconds_.Observe(Seconds(waited));
}

void StageMetrics::Ran(size_t frames, int64_t tokens, std::chrono::steady_clock::duration took) {
  frames_.Increment(static_cast<double>(frames));
  tokens_.Increment(static_cast<double>(std::max<int64_t>(0, tokens)));
  compute_seconds_.Increment(Seconds(took));
  batch_seconds_.Observe(Seconds(took));
}

void StageMetrics::Sent(size_t bytes) { bytes_sent_.Increment(static_cast<double>(bytes)); }

void StageMetrics::SetSessions(size_t sessions) { sessions_.Set(static_cast<double>(sessions)); }

void StageMetrics::SetNextHopRttMs(double ms) { next_hop_rtt_seconds_.Set(ms / 1e3); }

void StageMetrics::SetShard(uint64_t plan_epoch, int layer_first, int layer_last, bool serving) {
  plan_epoch_.Set(static_cast<double>(plan_epoch));
  layer_first_.Set(layer_first);
  layer_last_.Set(layer_last);
  serving_.Set(serving ? 1 : 0);
}

v1::StageCounters StageMetrics::Counters() const {
  v1::StageCounters c;
  c.set_frames(static_cast<uint64_t>(frames_.Value()));
  c.set_tokens(static_cast<uint64_t>(tokens_.Value()));
  c.set_compute_ms(compute_seconds_.Value() * 1e3);
  c.set_queue_ms(queue_seconds_.Value() * 1e3);
  c.set_bytes_sent(static_cast<uint64_t>(bytes_sent_.Value()));
  c.set_hop_rtt_ms(next_hop_rtt_seconds_.Value() * 1e3);
  c.set_sessions(static_cast<uint32_t>(sessions_.Value()));
  return c;
}

std::string StageMetrics::MetricsText() const { return RenderPrometheusText(*registry_); }

}  // namespace tandem
