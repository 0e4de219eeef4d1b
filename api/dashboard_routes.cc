#include "api/dashboard_routes.h"

#include <string>

#include "absl/hash/hash.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "coordinator/cluster_json.h"
#include "coordinator/dashboard_assets.h"
#include "telemetry/exposition.h"

namespace tandem::api {

std::string ClusterEtag(absl::string_view body) {
  // Within one coordinator process the same body has the same tag; a different body a
  // different one but for a 64-bit hash collision (which would skip one redraw).
  return absl::StrCat("\"", absl::Hex(absl::Hash<absl::string_view>{}(body), absl::kZeroPad16), "-",
                      body.size(), "\"");
}

bool EtagMatches(absl::string_view if_none_match, absl::string_view tag) {
  for (absl::string_view candidate : absl::StrSplit(if_none_match, ',')) {
    candidate = absl::StripAsciiWhitespace(candidate);
    if (absl::StartsWith(candidate, "W/")) candidate.remove_prefix(2);  // weak: same body
    if (candidate == "*" || candidate == tag) return true;
  }
  return false;
}

void RegisterDashboardRoutes(httplib::Server& server, Coordinator& coordinator) {
  auto asset = [](const httplib::Request& req, httplib::Response& res) {
    const DashboardAsset* a = FindDashboardAsset(req.path);
    if (a == nullptr) {
      res.status = 404;
      res.set_content("not found", "text/plain");
      return;
    }
    res.set_header("Cache-Control", "no-cache");
    res.set_content(std::string(a->body), std::string(a->content_type).c_str());
  };
  server.Get("/", asset);
  server.Get("/index.html", asset);
  server.Get("/dashboard.css", asset);
  server.Get("/dashboard.js", asset);
  // A page polling twice a second mostly asks again for what it has: it sends the ETag of
  // what it shows and gets 304 without a body while the cluster stays the same.
  server.Get("/v1/cluster", [&coordinator](const httplib::Request& req, httplib::Response& res) {
    std::string body = ClusterJson(coordinator.Status()).dump();
    const std::string tag = ClusterEtag(body);
    res.set_header("Cache-Control", "no-store");
    res.set_header("ETag", tag);
    if (EtagMatches(req.get_header_value("If-None-Match"), tag)) {
      res.status = 304;
      return;
    }
    res.set_content(std::move(body), "application/json");
  });
  server.Get("/metrics", [&coordinator](const httplib::Request&, httplib::Response& res) {
    res.set_content(coordinator.metrics_text(), std::string(kPrometheusContentType).c_str());
  });
}

}  // namespace tandem::api
