// Generated Unicode data (model/unicode_tables.cc); use model/unicode.h, not this header.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tandem::unicode_internal {

// Flags hold from `first` up to the next entry's `first`.
struct CodepointRange {
  uint32_t first;
  uint16_t flags;
};

struct CodepointPair {
  uint32_t from;
  uint32_t to;
};

extern const CodepointRange kCodepointRanges[];
extern const size_t kCodepointRangesSize;
// Sorted by `from`.
extern const CodepointPair kLowercase[];
extern const size_t kLowercaseSize;
extern const CodepointPair kNfdFirst[];
extern const size_t kNfdFirstSize;

}  // namespace tandem::unicode_internal
