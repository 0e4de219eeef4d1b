#include "api/dashboard_routes.h"

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "absl/hash/hash.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "api/connection_watch.h"
#include "api/server.h"
#include "coordinator/cluster_json.h"
#include "coordinator/dashboard_assets.h"
#include "telemetry/exposition.h"

namespace tandem::api {
namespace {

// GET /v1/cluster/events: the cluster is looked at every tick. A change of its shape (a
// node's state, a plan, an event) is sent at once; a change of figures alone (while tokens
// flow, every heartbeat changes the rates) at most once per figures interval: each event
// costs a watching browser a parse and a redraw, on a machine that may be a stage.
constexpr auto kClusterStreamTick = std::chrono::milliseconds(250);
constexpr auto kClusterStreamFiguresInterval = std::chrono::seconds(2);
constexpr auto kClusterStreamKeepAlive = std::chrono::seconds(5);

}  // namespace

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
  // The same object as a stream of server-sent events, one each time it changes: a page
  // watching it costs its browser far less than polling (no request per look), and a
  // change shows within a tick. Each stream holds one of the server's workers.
  auto streams = std::make_shared<std::atomic<int>>(0);
  server.Get("/v1/cluster/events", [&coordinator, streams](const httplib::Request& req,
                                                           httplib::Response& res) {
    if (streams->fetch_add(1) >= kMaxClusterStreams) {
      streams->fetch_sub(1);
      res.set_header("Retry-After", "5");
      SendError(res, absl::UnavailableError(absl::StrCat(
                         kMaxClusterStreams, " cluster event streams are open already; poll ",
                         "GET /v1/cluster instead")));
      return;
    }
    struct Watch {
      std::string last;        // the last body sent
      std::string last_shape;  // and its ClusterShape
      std::chrono::steady_clock::time_point sent{};
      bool first = true;
    };
    auto watch = std::make_shared<Watch>();
    // A watcher that went away (a page reloaded or hidden) frees its place within a tick,
    // not at the next write, which may be a keep-alive away: the client is looked for on
    // this, the handler's thread, where the content provider runs too.
    auto client = std::make_shared<ConnectionWatch>(req);
    res.set_header("Cache-Control", "no-store");
    res.set_chunked_content_provider(
        "text/event-stream",
        [&coordinator, watch, client](size_t, httplib::DataSink& sink) {
          if (!watch->first) std::this_thread::sleep_for(kClusterStreamTick);
          watch->first = false;
          if (client->Closed()) return false;
          const auto now = std::chrono::steady_clock::now();
          std::string event;
          nlohmann::json cluster = ClusterJson(coordinator.Status());
          std::string body = cluster.dump();
          if (body != watch->last) {
            std::string shape = ClusterShape(std::move(cluster)).dump();
            if (shape != watch->last_shape || now - watch->sent >= kClusterStreamFiguresInterval) {
              event = absl::StrCat("data: ", body, "\n\n");
              watch->last = std::move(body);
              watch->last_shape = std::move(shape);
            }
          }
          // A comment now and then: a client that went away is noticed by the failed write.
          if (event.empty() && now - watch->sent >= kClusterStreamKeepAlive) event = ":\n\n";
          if (event.empty()) return true;
          watch->sent = now;
          return sink.write(event.data(), event.size());
        },
        [streams](bool) { streams->fetch_sub(1); });
  });
  server.Get("/metrics", [&coordinator](const httplib::Request&, httplib::Response& res) {
    res.set_content(coordinator.metrics_text(), std::string(kPrometheusContentType).c_str());
  });
}

}  // namespace tandem::api
