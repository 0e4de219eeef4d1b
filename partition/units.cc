#include "partition/units.h"

#include "absl/strings/str_format.h"

namespace tandem::partition {

std::string FormatGiB(uint64_t bytes) {
  const double value = static_cast<double>(bytes);
  if (bytes == 0 || value >= 0.05 * kBytesPerGiB) {
    return absl::StrFormat("%.1f GiB", value / kBytesPerGiB);
  }
  if (value >= 0.05 * 1024 * 1024) return absl::StrFormat("%.1f MiB", value / (1024 * 1024));
  return absl::StrFormat("%.1f KiB", value / 1024);
}

}  // namespace tandem::partition
