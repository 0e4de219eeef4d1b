#include "partition/stage_search.h"

#include <algorithm>
#include <bit>
#include <cassert>
#include <cmath>

namespace tandem::partition {
namespace {

constexpr double kInfinity = std::numeric_limits<double>::infinity();

// DP tables indexed by (mask, local node, layers assigned, moved layers).
class Tables {
 public:
  Tables(int num_candidates, int num_layers, int moved_size)
      : n_(num_candidates),
        layers_(num_layers),
        moved_size_(moved_size),
        value_(SearchStates(num_candidates, num_layers, moved_size > 1), kInfinity),
        parent_(value_.size(), -1) {}

  size_t Index(uint32_t mask, int j, int assigned, int moved) const {
    return ((static_cast<size_t>(mask) * n_ + j) * (layers_ + 1) + assigned) * moved_size_ + moved;
  }
  double& value(size_t index) { return value_[index]; }
  // The stage that ends in this state: where it began and which local node ran
  // the stage before it (-1 for the first stage), packed as (prev + 1) * (L + 1) + first.
  int32_t& parent(size_t index) { return parent_[index]; }

 private:
  int n_;
  int layers_;
  int moved_size_;
  std::vector<double> value_;
  std::vector<int32_t> parent_;
};

}  // namespace

bool Better(double a, double b) {
  if (std::isinf(b)) return a < b;
  return a < b - kTieTolerance * std::abs(b);
}

uint64_t SearchStates(int num_candidates, int num_layers, bool track_moved) {
  if (num_candidates >= 40) return std::numeric_limits<uint64_t>::max();
  const uint64_t per_mask =
      static_cast<uint64_t>(num_candidates) * (num_layers + 1) * (track_moved ? num_layers + 1 : 1);
  const uint64_t masks = uint64_t{1} << num_candidates;
  if (per_mask != 0 && masks > std::numeric_limits<uint64_t>::max() / per_mask) {
    return std::numeric_limits<uint64_t>::max();
  }
  return masks * per_mask;
}

std::optional<SearchResult> SearchStages(const CostModel& cost, const std::vector<int>& candidates,
                                         const SearchSpec& spec) {
  const int n = static_cast<int>(candidates.size());
  const int layers = cost.num_layers();
  const bool track_moved = !spec.previous_owner.empty();
  assert(n <= 31 && SearchStates(n, layers, track_moved) <= kMaxSearchStates);
  assert(!track_moved || static_cast<int>(spec.previous_owner.size()) == layers);
  if (n == 0) return std::nullopt;
  const int moved_size = track_moved ? layers + 1 : 1;
  const bool latency = spec.value == SearchSpec::Value::kLatency;

  // kept[j][l]: layers in [0, l) that local node j already owned.
  std::vector<std::vector<int>> kept(n, std::vector<int>(layers + 1, 0));
  if (track_moved) {
    for (int j = 0; j < n; ++j) {
      for (int l = 0; l < layers; ++l) {
        kept[j][l + 1] = kept[j][l] + (spec.previous_owner[l] == candidates[j] ? 1 : 0);
      }
    }
  }
  auto moved = [&](int j, int first, int last) {
    return track_moved ? (last - first) - (kept[j][last] - kept[j][first]) : 0;
  };

  Tables tables(n, layers, moved_size);
  std::vector<double> enter(moved_size);
  std::vector<int> enter_from(moved_size);
  const uint32_t full = (uint32_t{1} << n) - 1;
  for (uint32_t mask = 1; mask <= full; ++mask) {
    for (int j = 0; j < n; ++j) {
      if (!(mask >> j & 1)) continue;
      const uint32_t prev_mask = mask ^ (uint32_t{1} << j);
      const int node = candidates[j];
      for (int first = 0; first < layers; ++first) {
        const int max_last = cost.MaxLayerLast(node, first);
        if (max_last <= first) continue;
        // Best way to reach "node j starts at layer `first`", per moved count.
        std::fill(enter.begin(), enter.end(), kInfinity);
        std::fill(enter_from.begin(), enter_from.end(), -1);
        bool any = false;
        if (first == 0) {
          if (prev_mask != 0) continue;
          enter[0] = latency ? cost.CoordinatorLegSeconds(node) : 0;
          any = true;
        } else {
          if (prev_mask == 0) continue;
          const int max_moved = std::min(first, moved_size - 1);
          // Descending, so that on ties the earlier stages keep lower indices.
          for (int i = n - 1; i >= 0; --i) {
            if (!(prev_mask >> i & 1)) continue;
            const double transfer = cost.HopTransferSeconds(candidates[i], node);
            if (transfer > spec.item_cap) continue;
            const double hop = latency ? cost.HopSeconds(candidates[i], node) : transfer;
            for (int m = 0; m <= max_moved; ++m) {
              const double before = tables.value(tables.Index(prev_mask, i, first, m));
              if (std::isinf(before)) continue;
              const double v = latency ? before + hop : std::max(before, hop);
              if (Better(v, enter[m])) {
                enter[m] = v;
                enter_from[m] = i;
                any = true;
              }
            }
          }
        }
        if (!any) continue;
        for (int last = first + 1; last <= max_last; ++last) {
          // Compute plus the amortised weight transfer (cost_model.h).
          const double compute = cost.StageSeconds(node, first, last);
          if (compute > spec.item_cap) continue;
          const int stage_moved = moved(j, first, last);
          for (int m = 0; m + stage_moved < moved_size; ++m) {
            if (std::isinf(enter[m])) continue;
            const double v = latency ? enter[m] + compute : std::max(enter[m], compute);
            const size_t index = tables.Index(mask, j, last, m + stage_moved);
            if (Better(v, tables.value(index))) {
              tables.value(index) = v;
              tables.parent(index) = (enter_from[m] + 1) * (layers + 1) + first;
            }
          }
        }
      }
    }
  }

  // Fewer stages first, then lower-numbered node sets, then nodes in index order:
  // the deterministic preference among tied plans.
  std::vector<uint32_t> masks(full);
  for (uint32_t mask = 1; mask <= full; ++mask) masks[mask - 1] = mask;
  std::stable_sort(masks.begin(), masks.end(),
                   [](uint32_t a, uint32_t b) { return std::popcount(a) < std::popcount(b); });

  for (int m = 0; m < moved_size; ++m) {
    double best = kInfinity;
    uint32_t best_mask = 0;
    int best_j = -1;
    for (uint32_t mask : masks) {
      for (int j = n - 1; j >= 0; --j) {
        if (!(mask >> j & 1)) continue;
        const double v = tables.value(tables.Index(mask, j, layers, m));
        if (std::isinf(v)) continue;
        const double total = latency ? v + cost.CoordinatorLegSeconds(candidates[j]) : v;
        if (Better(total, best)) {
          best = total;
          best_mask = mask;
          best_j = j;
        }
      }
    }
    if (best_j < 0 || best > spec.max_value) continue;

    SearchResult result;
    result.value = best;
    result.moved_layers = m;
    uint32_t mask = best_mask;
    int j = best_j;
    int last = layers;
    int moved_left = m;
    while (j >= 0) {
      const int32_t parent = tables.parent(tables.Index(mask, j, last, moved_left));
      const int first = parent % (layers + 1);
      const int prev = parent / (layers + 1) - 1;
      result.ranges.push_back({candidates[j], first, last});
      moved_left -= moved(j, first, last);
      mask ^= uint32_t{1} << j;
      last = first;
      j = prev;
    }
    assert(last == 0 && moved_left == 0 && mask == 0);
    std::reverse(result.ranges.begin(), result.ranges.end());
    return result;
  }
  return std::nullopt;
}

}  // namespace tandem::partition
