// Greedy pair merging, the loop SentencePiece-style and byte-level BPE encoding share:
// the text starts as one symbol per UTF-8 character; the adjacent pair with the highest
// priority merges, again and again, until no pair may merge.
#pragma once

#include <cstdint>
#include <optional>
#include <queue>
#include <vector>

#include "absl/strings/string_view.h"
#include "model/unicode.h"

namespace tandem {

struct MergeSymbol {
  int32_t prev;
  int32_t next;
  size_t offset;
  size_t length;  // 0 once merged into its left neighbour
};

// `priority(left, right)` gives the priority of merging two adjacent pieces of `text`
// (higher merges first), or nullopt when they may not merge. Ties go to the leftmost pair. Returns
// the symbols; the live ones are linked from index 0 through `next` (empty text: no symbols).
template <typename Priority>
std::vector<MergeSymbol> MergePairs(absl::string_view text, Priority priority) {
  std::vector<MergeSymbol> symbols;
  for (size_t offset = 0; offset < text.size();) {
    const size_t length =
        std::min(Utf8SequenceLength(static_cast<uint8_t>(text[offset])), text.size() - offset);
    const int32_t index = static_cast<int32_t>(symbols.size());
    symbols.push_back({index - 1, offset + length == text.size() ? -1 : index + 1, offset, length});
    offset += length;
  }
  struct Candidate {
    int32_t left;
    int32_t right;
    double priority;
    size_t length;  // detects stale entries: the pair's current length must still match
  };
  auto order = [](const Candidate& a, const Candidate& b) {
    return a.priority < b.priority || (a.priority == b.priority && a.left > b.left);
  };
  std::priority_queue<Candidate, std::vector<Candidate>, decltype(order)> queue(order);
  auto try_add = [&](int32_t left, int32_t right) {
    if (left == -1 || right == -1) return;
    const size_t length = symbols[left].length + symbols[right].length;
    const std::optional<double> p =
        priority(text.substr(symbols[left].offset, symbols[left].length),
                 text.substr(symbols[right].offset, symbols[right].length));
    if (p) queue.push({left, right, *p, length});
  };
  for (int32_t i = 1; i < static_cast<int32_t>(symbols.size()); ++i) try_add(i - 1, i);
  while (!queue.empty()) {
    const Candidate c = queue.top();
    queue.pop();
    MergeSymbol& left = symbols[c.left];
    MergeSymbol& right = symbols[c.right];
    if (left.length == 0 || right.length == 0 || left.length + right.length != c.length) continue;
    left.length += right.length;
    right.length = 0;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = c.left;
    try_add(left.prev, c.left);
    try_add(c.left, left.next);
  }
  return symbols;
}

}  // namespace tandem
