// A counter-based random source: the draw for (seed, position) is a pure function of
// the two, so a seeded request gives the same text however the layers are split, on
// whichever node samples, and after any failover.
#pragma once

#include <cstdint>

namespace tandem {

inline uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Uniform in [0, 1) with 53 random bits.
inline double CounterUniform(uint64_t seed, uint64_t position) {
  uint64_t bits = SplitMix64(SplitMix64(seed) ^ SplitMix64(position ^ 0x5851f42d4c957f2dull));
  return static_cast<double>(bits >> 11) * 0x1.0p-53;
}

}  // namespace tandem
