// A bounded ring of recent cluster events (a node joined or died, a re-plan, a recovery, a
// refused request), each with its wall-clock time, for the dashboard and `tandem status`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

namespace tandem {

struct ClusterEventRecord {
  int64_t time_ms = 0;  // wall clock, milliseconds since the Unix epoch
  std::string kind;
  std::string message;
};

class EventLog {
 public:
  using WallClockMs = std::function<int64_t()>;
  // Keeps the newest `capacity` events; `wall_ms` stamps them (tests pass a fake clock).
  explicit EventLog(size_t capacity = 200, WallClockMs wall_ms = SystemWallClockMs);

  void Add(std::string kind, std::string message);
  // Oldest first.
  std::vector<ClusterEventRecord> Recent() const;

  static int64_t SystemWallClockMs();

 private:
  const size_t capacity_;
  const WallClockMs wall_ms_;
  mutable std::mutex mutex_;
  std::deque<ClusterEventRecord> events_;
};

}  // namespace tandem
