#include "partition/units.h"

#include "absl/strings/str_format.h"

namespace tandem::partition {

std::string FormatGiB(uint64_t bytes) {
  return absl::StrFormat("%.1f GiB", static_cast<double>(bytes) / kBytesPerGiB);
}

}  // namespace tandem::partition
