// The nodes that registered, with their profiles and heartbeats, and who may be planned:
// alive, not draining, and not fenced off for misbehaving (with a backoff that grows each
// time, so a node that keeps hanging cannot make the plan flap).
//
// Identity: ids are unique to this coordinator run ("node-3.5f2a9c"), and a node sends
// the boot id of its process with every registration and heartbeat. A heartbeat counts
// only when id and boot id both match; a process registering at an address where another
// process was registered replaces it (the old record dies at once).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
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

// What a node without the model file says its cache holds (in its Register, or in a
// Configure's answer), off the wire: a list longer than the model's layers is refused;
// layers out of range are ignored.
absl::StatusOr<HeldWeights> CachedWeights(int n_layers,
                                          const google::protobuf::RepeatedField<int32_t>& layers,
                                          bool embedding, bool head);

struct NodeRecord {
  std::string id;
  std::string address;
  std::string boot_id;
  std::string identity;  // its certificate's name; empty on plaintext links
  v1::NodeProfile profile;
  std::chrono::steady_clock::time_point registered;
  std::chrono::steady_clock::time_point last_seen;
  bool alive = true;
  double rtt_ms = 0;  // measured by the coordinator; 0 until then
  // As its last heartbeat said, or its last Configure's answer when that came later.
  bool serving = false;
  std::chrono::steady_clock::time_point died;  // when it was declared dead
  uint32_t sessions = 0;                       // sessions the node holds, as of its last heartbeat
  // A node without the model file: the weights in its cache (it fetches the rest first).
  HeldWeights held;
  // As `serving`.
  uint64_t plan_epoch = 0;
  // Set by a Configure's answer: the next heartbeat may have been measured before it.
  bool configured_since_beat = false;
  uint32_t pending_frames = 0;
  uint32_t stalled_ms = 0;
  bool draining = false;
  // A node without the model file: its transfer and measured fetch rate (checked sane).
  bool has_fetch = false;
  v1::FetchProgress fetch;
  // Fencing: left out of plans until `fenced_until`; `strikes` sets the next backoff.
  std::chrono::steady_clock::time_point fenced_until;
  std::chrono::steady_clock::time_point last_fenced;
  int strikes = 0;
};

// Bounds on a heartbeat's fetch figures: a model of at most 4 TiB, a link of at most
// 1 TB/s.
inline constexpr uint64_t kMaxFetchBytes = uint64_t{1} << 42;
inline constexpr double kMaxFetchBytesPerSecond = 1e12;

struct RegistryOptions {
  std::chrono::milliseconds timeout{3000};  // silent this long: dead
  // Dead records are forgotten after this long, and beyond this many.
  std::chrono::milliseconds dead_retention{std::chrono::minutes(5)};
  size_t max_dead = 64;
  // A fenced node sits out base * 2^(strikes - 1), at most max; strikes are forgiven
  // after `forgive` without a fence.
  std::chrono::milliseconds fence_base{2000};
  std::chrono::milliseconds fence_max{60000};
  std::chrono::milliseconds forgive{120000};
};

class Registry {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;
  // `now` is the clock heartbeats are judged by (tests pass a fake one).
  Registry(RegistryOptions options, Clock now);

  struct Registration {
    std::string id;
    std::string replaced;  // the record this one replaced, if any
  };
  // Adds a node. The same process registering again (same boot id, and the same identity,
  // or on plaintext links the same address) keeps its id. Another process at that address,
  // or with that identity, replaces the old record: it is gone. `identity` is the
  // certificate's name, empty on plaintext links.
  Registration Register(const std::string& address, const std::string& boot_id,
                        const v1::NodeProfile& profile, const std::string& identity = "");
  // Records a heartbeat. False when the id is unknown, was declared dead, belongs to
  // another boot of the node or to another identity: the node must register again.
  bool Heartbeat(const v1::HeartbeatRequest& request, const std::string& identity = "");

  struct Expired {
    std::vector<std::string> dead;    // silent for longer than the timeout
    std::vector<std::string> pruned;  // dead records forgotten
  };
  // Marks nodes silent for longer than the timeout dead, and the live ones among
  // `unreachable` (their address refuses connections); forgets old dead records.
  Expired Expire(const std::vector<std::string>& unreachable = {});
  std::vector<NodeRecord> Alive() const;
  // Alive nodes that may be planned: not draining, not fenced.
  std::vector<NodeRecord> Plannable() const;
  bool IsPlannable(const std::string& id) const;
  std::optional<NodeRecord> Find(const std::string& id) const;
  // Every node that registered, the dead ones included (until pruned).
  std::vector<NodeRecord> All() const;
  // Leaves a node out of plans for its backoff; returns the backoff.
  std::chrono::milliseconds Fence(const std::string& id);
  // Bumped whenever the set of live nodes changes.
  uint64_t generation() const;
  void SetRtt(const std::string& id, double rtt_ms);
  // This coordinator run's suffix of every node id.
  const std::string& run_id() const { return run_id_; }
  void SetHeld(const std::string& id, HeldWeights held);
  // The node now also holds what a stage of [first, last) reads.
  void AddHeldStage(const std::string& id, int first, int last, int n_layers);
  // The node answered a Configure for `epoch`: it serves that plan now. A heartbeat
  // measured before that answer (an older epoch) does not undo this; a second one does.
  void Configured(const std::string& id, uint64_t epoch);

 private:
  bool PlannableLocked(const NodeRecord& n, std::chrono::steady_clock::time_point now) const;

  const RegistryOptions options_;
  const Clock now_;
  const std::string run_id_;
  mutable std::mutex mutex_;
  std::vector<NodeRecord> nodes_;
  uint64_t next_id_ = 1;
  uint64_t generation_ = 0;
};

}  // namespace tandem
