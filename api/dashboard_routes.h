// The dashboard on the API's server: GET / (and the page's files), GET /v1/cluster (the
// cluster as coordinator/cluster_json.h builds it; ETag and 304), GET /v1/cluster/events
// (the same as server-sent events, one each time it changes; at most kMaxClusterStreams
// at once, more get 503) and GET /metrics (Prometheus text).
#pragma once

#include <httplib.h>

#include <string>

#include "absl/strings/string_view.h"
#include "coordinator/coordinator.h"

namespace tandem::api {

inline constexpr int kMaxClusterStreams = 4;

// GET /v1/cluster's ETag for `body`, and whether an If-None-Match header value (a list of
// tags, or *) names `tag`: the page then gets 304 Not Modified and redraws nothing.
std::string ClusterEtag(absl::string_view body);
bool EtagMatches(absl::string_view if_none_match, absl::string_view tag);

void RegisterDashboardRoutes(httplib::Server& server, Coordinator& coordinator);

}  // namespace tandem::api
