#include "api/dashboard_routes.h"

#include <string>

#include "coordinator/cluster_json.h"
#include "coordinator/dashboard_assets.h"
#include "telemetry/exposition.h"

namespace tandem::api {

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
  server.Get("/v1/cluster", [&coordinator](const httplib::Request&, httplib::Response& res) {
    res.set_header("Cache-Control", "no-store");
    res.set_content(ClusterJson(coordinator.Status()).dump(), "application/json");
  });
  server.Get("/metrics", [&coordinator](const httplib::Request&, httplib::Response& res) {
    res.set_content(coordinator.metrics_text(), std::string(kPrometheusContentType).c_str());
  });
}

}  // namespace tandem::api
