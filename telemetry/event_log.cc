#include "telemetry/event_log.h"

#include <chrono>

namespace tandem {

EventLog::EventLog(size_t capacity, WallClockMs wall_ms)
    : capacity_(capacity > 0 ? capacity : 1), wall_ms_(std::move(wall_ms)) {}

int64_t EventLog::SystemWallClockMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void EventLog::Add(std::string kind, std::string message) {
  ClusterEventRecord e{wall_ms_(), std::move(kind), std::move(message)};
  std::lock_guard<std::mutex> lock(mutex_);
  events_.push_back(std::move(e));
  while (events_.size() > capacity_) events_.pop_front();
}

std::vector<ClusterEventRecord> EventLog::Recent() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return {events_.begin(), events_.end()};
}

}  // namespace tandem
