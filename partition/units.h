// Human-readable sizes for plans and their explanations.
#pragma once

#include <cstdint>
#include <string>

namespace tandem::partition {

inline constexpr double kBytesPerGiB = 1024.0 * 1024.0 * 1024.0;

// "38.2 GiB": one decimal, as every message and table prints memory. Sizes that
// would print as "0.0 GiB" but are not zero print in MiB or KiB instead ("1.1 MiB"),
// so that plans for small models still show their numbers.
std::string FormatGiB(uint64_t bytes);

}  // namespace tandem::partition
