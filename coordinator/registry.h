// The nodes that registered, with their profiles and heartbeats.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "tandem.pb.h"

namespace tandem {

// The weights a node holds. A node with the model file holds them all.
struct HeldWeights {
  bool all = true;           // the model file
  std::vector<bool> layers;  // otherwise: per layer
  bool embedding = false;
  bool head = false;
  // Adds what a stage of [first, last) of an n_layers model read.
  void AddStage(int first, int last, int n_layers);
  // Holds some weight of a stage of [first, last).
  bool Overlaps(int first, int last) const;
};

struct NodeRecord {
  std::string id;
  std::string address;
  v1::NodeProfile profile;
  std::chrono::steady_clock::time_point last_seen;
  bool alive = true;
  double rtt_ms = 0;                           // measured by the coordinator; 0 until then
  bool serving = false;                        // as its last heartbeat said
  std::chrono::steady_clock::time_point died;  // when it was declared dead
  uint32_t sessions = 0;                       // sessions the node holds, as of its last heartbeat
  // A node without the model file: the weights in its cache (it fetches the rest first).
  HeldWeights held;
};

class Registry {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;
  // `now` is the clock heartbeats are judged by (tests pass a fake one).
  Registry(std::chrono::milliseconds timeout, Clock now)
      : timeout_(timeout), now_(std::move(now)) {}

  // Adds a node (or refreshes one registering again from the same address); returns its id.
  std::string Register(const std::string& address, const v1::NodeProfile& profile);
  // False when the id is unknown or was declared dead.
  bool Heartbeat(const std::string& id, bool serving = false, uint32_t sessions = 0);
  // Marks nodes silent for longer than the timeout dead, and the live ones among
  // `unreachable`; returns their ids.
  std::vector<std::string> Expire(const std::vector<std::string>& unreachable = {});
  std::vector<NodeRecord> Alive() const;
  // Every node that registered, the dead ones included.
  std::vector<NodeRecord> All() const;
  // Bumped whenever the set of live nodes changes.
  uint64_t generation() const;
  void SetRtt(const std::string& id, double rtt_ms);
  void SetHeld(const std::string& id, HeldWeights held);
  // The node now also holds what a stage of [first, last) reads.
  void AddHeldStage(const std::string& id, int first, int last, int n_layers);

 private:
  const std::chrono::milliseconds timeout_;
  const Clock now_;
  mutable std::mutex mutex_;
  std::vector<NodeRecord> nodes_;
  uint64_t next_id_ = 1;
  uint64_t generation_ = 0;
};

}  // namespace tandem
