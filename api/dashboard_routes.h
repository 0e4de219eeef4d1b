// The dashboard on the API's server: GET / (and the page's files), GET /v1/cluster (the
// cluster as coordinator/cluster_json.h builds it) and GET /metrics (Prometheus text).
#pragma once

#include <httplib.h>

#include "coordinator/coordinator.h"

namespace tandem::api {

void RegisterDashboardRoutes(httplib::Server& server, Coordinator& coordinator);

}  // namespace tandem::api
