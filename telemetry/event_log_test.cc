#include "telemetry/event_log.h"

#include <gtest/gtest.h>

namespace tandem {
namespace {

TEST(EventLogTest, KeepsTheNewestEventsOldestFirst) {
  int64_t now = 1000;
  EventLog log(3, [&] { return now; });
  for (int i = 0; i < 5; ++i) {
    log.Add("joined", "node-" + std::to_string(i));
    now += 10;
  }
  const auto events = log.Recent();
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].message, "node-2");
  EXPECT_EQ(events[0].time_ms, 1020);
  EXPECT_EQ(events[2].message, "node-4");
  EXPECT_EQ(events[2].kind, "joined");
}

}  // namespace
}  // namespace tandem
