#include "coordinator/registry.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace tandem {

std::string Registry::Register(const std::string& address, const v1::NodeProfile& profile) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& n : nodes_) {
    if (n.address == address && n.alive) {
      n.profile = profile;
      n.last_seen = now_();
      ++generation_;
      return n.id;
    }
  }
  NodeRecord n;
  n.id = absl::StrCat("node-", next_id_++);
  n.address = address;
  n.profile = profile;
  n.last_seen = now_();
  nodes_.push_back(n);
  ++generation_;
  return n.id;
}

bool Registry::Heartbeat(const std::string& id, bool serving, uint32_t sessions) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& n : nodes_) {
    if (n.id == id && n.alive) {
      n.last_seen = now_();
      n.serving = serving;
      n.sessions = sessions;
      return true;
    }
  }
  return false;
}

std::vector<std::string> Registry::Expire(const std::vector<std::string>& unreachable) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::string> dead;
  const auto now = now_();
  for (auto& n : nodes_) {
    const bool gone = std::find(unreachable.begin(), unreachable.end(), n.id) != unreachable.end();
    if (n.alive && (gone || now - n.last_seen > timeout_)) {
      n.alive = false;
      n.died = now;
      dead.push_back(n.id);
    }
  }
  if (!dead.empty()) ++generation_;
  return dead;
}

std::vector<NodeRecord> Registry::Alive() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<NodeRecord> out;
  for (const auto& n : nodes_) {
    if (n.alive) out.push_back(n);
  }
  return out;
}

std::vector<NodeRecord> Registry::All() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return nodes_;
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

uint64_t Registry::generation() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return generation_;
}

}  // namespace tandem
