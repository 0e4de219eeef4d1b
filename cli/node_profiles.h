// NODES.json: the cluster described by hand for `tandem plan`.
//
//   {"nodes": [{"name": "desk", "memory_gib": 16, "bandwidth_gbs": 40, "gflops": 300,
//               "rtt_ms": 0.5, "link_gbps": 1}, ...]}
//
// memory_gib: usable memory (GiB); bandwidth_gbs: memory bandwidth (GB/s);
// gflops: matrix-vector speed (GFLOP/s); rtt_ms and link_gbps: the node's link to
// the others (round trip in ms, Gbit/s). Unknown fields are ignored.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "partition/profile.h"

namespace tandem::cli {

// Errors name the source, the node and the field, e.g.
// "nodes.json: nodes[1] (\"laptop\"): field \"gflops\" is missing".
absl::StatusOr<std::vector<partition::NodeProfile>> ParseNodeProfiles(std::string_view json_text,
                                                                      std::string_view source);

absl::StatusOr<std::vector<partition::NodeProfile>> ReadNodeProfiles(const std::string& path);

}  // namespace tandem::cli
