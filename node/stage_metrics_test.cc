#include "node/stage_metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace tandem {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;
using ::testing::HasSubstr;

TEST(StageMetricsTest, HeartbeatCountersAreCumulative) {
  StageMetrics m;
  m.Queued(microseconds(500));
  m.Queued(microseconds(1500));
  m.Ran(2, 9, milliseconds(4));  // a prefill chunk of 8 and one decode token
  m.Sent(1000);
  m.Sent(24);
  m.SetSessions(2);
  m.SetNextHopRttMs(0.6);
  v1::StageCounters c = m.Counters();
  EXPECT_EQ(c.frames(), 2u);
  EXPECT_EQ(c.tokens(), 9u);
  EXPECT_NEAR(c.compute_ms(), 4, 1e-9);
  EXPECT_NEAR(c.queue_ms(), 2, 1e-9);
  EXPECT_EQ(c.bytes_sent(), 1024u);
  EXPECT_NEAR(c.hop_rtt_ms(), 0.6, 1e-9);
  EXPECT_EQ(c.sessions(), 2u);
  m.Ran(1, 1, milliseconds(1));
  EXPECT_EQ(m.Counters().tokens(), 10u);
  EXPECT_NEAR(m.Counters().compute_ms(), 5, 1e-9);
}

TEST(StageMetricsTest, MetricsTextNamesTheShard) {
  StageMetrics m;
  m.SetShard(3, 2, 5, true);
  m.Ran(1, 1, milliseconds(2));
  const std::string text = m.MetricsText();
  EXPECT_THAT(text, HasSubstr("# TYPE tandem_node_compute_seconds_total counter"));
  EXPECT_THAT(text, HasSubstr("# TYPE tandem_node_batch_seconds histogram"));
  EXPECT_THAT(text, HasSubstr("tandem_node_plan_epoch 3\n"));
  EXPECT_THAT(text, HasSubstr("tandem_node_layer_first 2\n"));
  EXPECT_THAT(text, HasSubstr("tandem_node_layer_last 5\n"));
  EXPECT_THAT(text, HasSubstr("tandem_node_serving 1\n"));
  EXPECT_THAT(text, HasSubstr("tandem_node_tokens_total 1\n"));
}

}  // namespace
}  // namespace tandem
