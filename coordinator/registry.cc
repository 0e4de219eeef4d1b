#include "coordinator/registry.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace tandem {
namespace {

std::string NewRunId() {
  std::random_device rd;
  return absl::StrFormat("%06x", rd() & 0xffffff);
}

}  // namespace

Registry::Registry(RegistryOptions options, Clock now)
    : options_(options), now_(std::move(now)), run_id_(NewRunId()) {}

Registry::Registration Registry::Register(const std::string& address, const std::string& boot_id,
                                          const v1::NodeProfile& profile,
                                          const std::string& identity) {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto now = now_();
  Registration out;
  for (auto& n : nodes_) {
    if (!n.alive) continue;
    const bool same_node = identity.empty() ? n.address == address : n.identity == identity;
    if (same_node && n.boot_id == boot_id) {
      // The same process again (say its earlier registration timed out on its side).
      n.address = address;
      n.profile = profile;
      n.last_seen = now;
      ++generation_;
      out.id = n.id;
      return out;
    }
    if (!same_node && n.address != address) continue;
    // Another process at that address, or a restart of the node holding that certificate
    // (the coordinator checked that the new one answers at its address): the old one is
    // gone.
    n.alive = false;
    n.died = now;
    out.replaced = n.id;
  }
  NodeRecord n;
  n.id = absl::StrCat("node-", next_id_++, ".", run_id_);
  n.address = address;
  n.boot_id = boot_id;
  n.identity = identity;
  n.profile = profile;
  n.registered = n.last_seen = now;
  nodes_.push_back(n);
  ++generation_;
  out.id = n.id;
  return out;
}

bool Registry::Heartbeat(const v1::HeartbeatRequest& r, const std::string& identity) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& n : nodes_) {
    if (n.id == r.node_id() && n.alive && n.boot_id == r.boot_id() && n.identity == identity) {
      n.last_seen = now_();
      const bool before_configure = n.configured_since_beat && r.plan_epoch() < n.plan_epoch;
      n.configured_since_beat = false;
      if (!before_configure) {
        n.serving = r.serving();
        n.plan_epoch = r.plan_epoch();
      }
      n.sessions = r.sessions();
      n.pending_frames = r.pending_frames();
      n.stalled_ms = r.stalled_ms();
      if (r.draining() && !n.draining) ++generation_;
      n.draining = r.draining();
      if (r.has_fetch()) {
        // Off the wire: figures that cannot be are dropped rather than shown or planned with.
        const v1::FetchProgress& f = r.fetch();
        const bool sane = f.bytes_done() <= f.bytes_total() && f.bytes_total() <= kMaxFetchBytes &&
                          std::isfinite(f.bytes_per_s()) && f.bytes_per_s() >= 0 &&
                          f.bytes_per_s() <= kMaxFetchBytesPerSecond;
        n.has_fetch = sane;
        n.fetch = sane ? f : v1::FetchProgress();
      }
      return true;
    }
  }
  return false;
}

Registry::Expired Registry::Expire(const std::vector<std::string>& unreachable) {
  std::lock_guard<std::mutex> lock(mutex_);
  Expired out;
  const auto now = now_();
  for (auto& n : nodes_) {
    const bool gone = std::find(unreachable.begin(), unreachable.end(), n.id) != unreachable.end();
    if (n.alive && (gone || now - n.last_seen > options_.timeout)) {
      n.alive = false;
      n.died = now;
      out.dead.push_back(n.id);
    }
  }
  if (!out.dead.empty()) ++generation_;
  // Forget dead records past their retention, and the oldest beyond max_dead.
  std::vector<const NodeRecord*> dead;
  for (const auto& n : nodes_) {
    if (!n.alive) dead.push_back(&n);
  }
  std::sort(dead.begin(), dead.end(),
            [](const NodeRecord* a, const NodeRecord* b) { return a->died > b->died; });
  for (size_t i = 0; i < dead.size(); ++i) {
    if (i >= options_.max_dead || now - dead[i]->died > options_.dead_retention) {
      out.pruned.push_back(dead[i]->id);
    }
  }
  if (!out.pruned.empty()) {
    nodes_.erase(std::remove_if(nodes_.begin(), nodes_.end(),
                                [&](const NodeRecord& n) {
                                  return std::find(out.pruned.begin(), out.pruned.end(), n.id) !=
                                         out.pruned.end();
                                }),
                 nodes_.end());
  }
  return out;
}

std::vector<NodeRecord> Registry::Alive() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<NodeRecord> out;
  for (const auto& n : nodes_) {
    if (n.alive) out.push_back(n);
  }
  return out;
}

bool Registry::PlannableLocked(const NodeRecord& n,
                               std::chrono::steady_clock::time_point now) const {
  return n.alive && !n.draining && now >= n.fenced_until;
}

std::vector<NodeRecord> Registry::Plannable() const {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto now = now_();
  std::vector<NodeRecord> out;
  for (const auto& n : nodes_) {
    if (PlannableLocked(n, now)) out.push_back(n);
  }
  return out;
}

bool Registry::IsPlannable(const std::string& id) const {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto now = now_();
  for (const auto& n : nodes_) {
    if (n.id == id) return PlannableLocked(n, now);
  }
  return false;
}

std::optional<NodeRecord> Registry::Find(const std::string& id) const {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& n : nodes_) {
    if (n.id == id) return n;
  }
  return std::nullopt;
}

std::vector<NodeRecord> Registry::All() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return nodes_;
}

std::chrono::milliseconds Registry::Fence(const std::string& id) {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto now = now_();
  for (auto& n : nodes_) {
    if (n.id != id) continue;
    if (n.strikes > 0 && now - n.last_fenced > options_.forgive) n.strikes = 0;
    ++n.strikes;
    auto backoff = options_.fence_base;
    for (int i = 1; i < n.strikes && backoff < options_.fence_max; ++i) backoff *= 2;
    backoff = std::min(backoff, options_.fence_max);
    n.fenced_until = now + backoff;
    n.last_fenced = now;
    ++generation_;
    return backoff;
  }
  return std::chrono::milliseconds(0);
}

void Registry::SetRtt(const std::string& id, double rtt_ms) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& n : nodes_) {
    if (n.id == id) n.rtt_ms = rtt_ms;
  }
}

void HeldWeights::AddStage(int first, int last, int n_layers) {
  if (all) return;
  layers.resize(n_layers, false);
  for (int l = std::max(first, 0); l < std::min(last, n_layers); ++l) layers[l] = true;
  if (first == 0) embedding = true;
  if (last == n_layers) head = true;
}

absl::StatusOr<HeldWeights> CachedWeights(int n_layers,
                                          const google::protobuf::RepeatedField<int32_t>& layers,
                                          bool embedding, bool head) {
  if (layers.size() > n_layers) {
    return absl::InvalidArgumentError(
        absl::StrCat("the node lists ", layers.size(), " cached layers; the model has ", n_layers));
  }
  HeldWeights held;
  held.all = false;
  held.layers.assign(n_layers, false);
  for (int l : layers) {
    if (l >= 0 && l < n_layers) held.layers[l] = true;
  }
  held.embedding = embedding;
  held.head = head;
  return held;
}

bool HeldWeights::Overlaps(int first, int last) const {
  if (all) return true;
  for (int l = std::max(first, 0); l < std::min<int>(last, layers.size()); ++l) {
    if (layers[l]) return true;
  }
  return false;
}

void Registry::SetHeld(const std::string& id, HeldWeights held) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& n : nodes_) {
    if (n.id == id) n.held = held;
  }
}

void Registry::AddHeldStage(const std::string& id, int first, int last, int n_layers) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& n : nodes_) {
    if (n.id == id) n.held.AddStage(first, last, n_layers);
  }
}

void Registry::Configured(const std::string& id, uint64_t epoch) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& n : nodes_) {
    if (n.id != id) continue;
    n.serving = true;
    n.plan_epoch = epoch;
    n.configured_since_beat = true;
  }
}

uint64_t Registry::generation() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return generation_;
}

}  // namespace tandem
