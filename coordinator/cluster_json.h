// The cluster as one JSON object: what GET /v1/cluster answers, what the dashboard draws
// (dashboard/dashboard.js) and what `tandem status --json` prints. Built from a Status
// alone, so the coordinator and a remote client produce the same object.
//
// An HTTP server serves the dashboard with three lookups:
//   GET /v1/cluster  ClusterJson(coordinator.Status()).dump(), application/json
//   GET /metrics     coordinator.metrics_text(), kPrometheusContentType (telemetry/exposition.h)
//   GET /, /dashboard.css, /dashboard.js
//                    FindDashboardAsset(path): body and content_type (dashboard_assets.h)
#pragma once

#include "nlohmann/json.hpp"
#include "tandem.pb.h"

namespace tandem {

nlohmann::json ClusterJson(const v1::StatusResponse& status);

// `cluster` (a ClusterJson) without the figures that change with every token while it
// generates: the measured rates, the stages' timings, the round trips and a transfer's
// progress. What is left changes when the cluster does (a node joins, loads, dies, a
// plan or an event): GET /v1/cluster/events sends those changes at once and the
// figures alone at a calmer pace.
nlohmann::json ClusterShape(nlohmann::json cluster);

}  // namespace tandem
