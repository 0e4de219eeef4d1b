// Fuzz target: NODES.json as `tandem plan` reads it (cli/node_profiles.h).
#include <cstdint>
#include <string_view>

#include "cli/node_profiles.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)tandem::cli::ParseNodeProfiles(std::string_view(reinterpret_cast<const char*>(data), size),
                                       "fuzz.json");
  return 0;
}
