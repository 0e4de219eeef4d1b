#include "model/ggml_type.h"

#include <array>
#include <cctype>
#include <string>

namespace tandem {
namespace {

constexpr std::array kTraits = {
    GgmlTypeTraits{GgmlType::kF32, "f32", 1, 4},
    GgmlTypeTraits{GgmlType::kF16, "f16", 1, 2},
    GgmlTypeTraits{GgmlType::kQ4_0, "q4_0", 32, 18},
    GgmlTypeTraits{GgmlType::kQ4_1, "q4_1", 32, 20},
    GgmlTypeTraits{GgmlType::kQ5_0, "q5_0", 32, 22},
    GgmlTypeTraits{GgmlType::kQ5_1, "q5_1", 32, 24},
    GgmlTypeTraits{GgmlType::kQ8_0, "q8_0", 32, 34},
    GgmlTypeTraits{GgmlType::kQ8_1, "q8_1", 32, 36},
    GgmlTypeTraits{GgmlType::kQ2_K, "q2_k", 256, 84},
    GgmlTypeTraits{GgmlType::kQ3_K, "q3_k", 256, 110},
    GgmlTypeTraits{GgmlType::kQ4_K, "q4_k", 256, 144},
    GgmlTypeTraits{GgmlType::kQ5_K, "q5_k", 256, 176},
    GgmlTypeTraits{GgmlType::kQ6_K, "q6_k", 256, 210},
    GgmlTypeTraits{GgmlType::kQ8_K, "q8_k", 256, 292},
    GgmlTypeTraits{GgmlType::kI8, "i8", 1, 1},
    GgmlTypeTraits{GgmlType::kI16, "i16", 1, 2},
    GgmlTypeTraits{GgmlType::kI32, "i32", 1, 4},
    GgmlTypeTraits{GgmlType::kI64, "i64", 1, 8},
    GgmlTypeTraits{GgmlType::kF64, "f64", 1, 8},
    GgmlTypeTraits{GgmlType::kBF16, "bf16", 1, 2},
};

}  // namespace

std::optional<GgmlTypeTraits> LookupGgmlType(uint32_t id) {
  for (const auto& t : kTraits) {
    if (static_cast<uint32_t>(t.type) == id) return t;
  }
  return std::nullopt;
}

GgmlTypeTraits TraitsOf(GgmlType type) { return *LookupGgmlType(static_cast<uint32_t>(type)); }

absl::string_view GgmlTypeName(GgmlType type) { return TraitsOf(type).name; }

std::optional<GgmlType> GgmlTypeFromName(absl::string_view name) {
  std::string lower(name);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const auto& t : kTraits) {
    if (t.name == lower) return t.type;
  }
  return std::nullopt;
}

int64_t RowBytes(GgmlType type, int64_t n) {
  auto t = TraitsOf(type);
  if (n % t.block_elements != 0) return -1;
  return n / t.block_elements * t.block_bytes;
}

}  // namespace tandem
