// Sizes computed from counts that came off the wire or out of a file: every product and
// sum is checked for overflow before anything is allocated from it.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>

namespace tandem {

// The product of non-negative factors, or nullopt when a factor is negative or the
// product does not fit in int64 (so it also fits size_t and can index memory).
inline std::optional<int64_t> CheckedProduct(std::initializer_list<int64_t> factors) {
  int64_t product = 1;
  for (int64_t f : factors) {
    if (f < 0 || __builtin_mul_overflow(product, f, &product)) return std::nullopt;
  }
  return product;
}

// a + b for non-negative a and b, or nullopt on overflow.
inline std::optional<int64_t> CheckedSum(int64_t a, int64_t b) {
  int64_t sum;
  if (a < 0 || b < 0 || __builtin_add_overflow(a, b, &sum)) return std::nullopt;
  return sum;
}

}  // namespace tandem
