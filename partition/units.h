// Human-readable sizes for plans and their explanations.
#pragma once

#include <cstdint>
#include <string>

namespace tandem::partition {

inline constexpr double kBytesPerGiB = 1024.0 * 1024.0 * 1024.0;

// "38.2 GiB": one decimal, as every message and table prints memory.
std::string FormatGiB(uint64_t bytes);

}  // namespace tandem::partition
