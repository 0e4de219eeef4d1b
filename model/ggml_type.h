// Tensor element types as GGUF numbers them, with their block layouts.
#pragma once

#include <cstdint>
#include <optional>

#include "absl/strings/string_view.h"

namespace tandem {

enum class GgmlType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ8_1 = 9,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kQ8_K = 15,
  kI8 = 24,
  kI16 = 25,
  kI32 = 26,
  kI64 = 27,
  kF64 = 28,
  kBF16 = 30,
};

struct GgmlTypeTraits {
  GgmlType type;
  absl::string_view name;
  int64_t block_elements;  // elements per block (1 for plain types)
  int64_t block_bytes;     // bytes per block
};

// Traits of a known type id, or nullopt for an id GGUF does not define (or we do not know).
std::optional<GgmlTypeTraits> LookupGgmlType(uint32_t id);
GgmlTypeTraits TraitsOf(GgmlType type);
absl::string_view GgmlTypeName(GgmlType type);
std::optional<GgmlType> GgmlTypeFromName(absl::string_view name);  // "q4_0", "f16", ...

// Bytes for one row of `n` elements; -1 if n is not a multiple of the block size.
int64_t RowBytes(GgmlType type, int64_t n);

}  // namespace tandem
