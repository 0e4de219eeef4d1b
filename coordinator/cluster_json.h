// The cluster as one JSON object: what GET /v1/cluster answers, what the dashboard draws
// (dashboard/dashboard.js) and what `tandem status --json` prints. Built from a Status
// alone, so the coordinator and a remote client produce the same object.
#pragma once

#include "nlohmann/json.hpp"
#include "tandem.pb.h"

namespace tandem {

nlohmann::json ClusterJson(const v1::StatusResponse& status);

}  // namespace tandem
