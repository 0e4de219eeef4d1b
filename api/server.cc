#include "api/server.h"

#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "api/api_error.h"
#include "api/sse.h"

namespace tandem::api {

absl::Status ParseHostPort(const std::string& address, std::string* host, int* port) {
  const size_t colon = address.rfind(':');
  int p = -1;
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(address.substr(colon + 1), &p) || p < 0 || p > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("an HTTP address is HOST:PORT (e.g. 127.0.0.1:8080), got '", address, "'"));
  }
  *host = address.substr(0, colon);
  *port = p;
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> ReadApiKeys(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read the API key file ", path));
  std::vector<std::string> keys;
  std::string line;
  while (std::getline(in, line)) {
    std::string key(absl::StripAsciiWhitespace(line));
    if (!key.empty()) keys.push_back(std::move(key));
  }
  if (keys.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("the API key file ", path, " holds no key"));
  }
  return keys;
}

void SendJson(httplib::Response& res, const nlohmann::json& body, int http_status) {
  res.status = http_status;
  res.set_content(DumpJson(body), "application/json");
}

void SendError(httplib::Response& res, const absl::Status& status) {
  const ApiError e = ApiErrorFromStatus(status);
  res.status = e.http_status;
  if (e.http_status == 429 || e.http_status == 503) res.set_header("Retry-After", "1");
  res.set_content(ApiErrorBody(e), "application/json");
}

HttpServer::HttpServer(HttpServerOptions options) : options_(std::move(options)) {
  const int threads = options_.threads;
  server_.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  server_.set_payload_max_length(options_.max_body_bytes);
  server_.set_keep_alive_max_count(1000);
  // Each SSE event goes out at once: Nagle's algorithm would hold a token ~40 ms for an ACK.
  server_.set_tcp_nodelay(true);
  server_.set_keep_alive_timeout(options_.keep_alive_seconds);
  // Keys guard the API; /health stays open for load balancers and scripts.
  if (!options_.api_keys.empty()) {
    server_.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      if (!absl::StartsWith(req.path, "/v1/")) return httplib::Server::HandlerResponse::Unhandled;
      const std::string auth = req.get_header_value("Authorization");
      const std::string kBearer = "Bearer ";
      if (absl::StartsWith(auth, kBearer)) {
        const std::string key(absl::StripAsciiWhitespace(auth.substr(kBearer.size())));
        for (const std::string& k : options_.api_keys) {
          if (k == key) return httplib::Server::HandlerResponse::Unhandled;
        }
      }
      SendError(res, absl::UnauthenticatedError(
                         auth.empty() ? "this server needs an API key: Authorization: Bearer KEY"
                                      : "the API key is not valid"));
      return httplib::Server::HandlerResponse::Handled;
    });
  }
  server_.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "internal error";
        try {
          std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        SendError(res, absl::InternalError(what));
      });
  // Unknown paths and httplib's own refusals (e.g. 413) get a JSON error body too.
  server_.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    ApiError e;
    e.http_status = res.status;
    e.type = "invalid_request_error";
    e.message = res.status == 404 ? absl::StrCat("no route for ", req.method, " ", req.path)
                                  : absl::StrCat("HTTP ", res.status);
    res.set_content(ApiErrorBody(e), "application/json");
  });
}

HttpServer::~HttpServer() { Stop(); }

absl::Status HttpServer::Start() {
  if (options_.port == 0) {
    port_ = server_.bind_to_any_port(options_.host);
  } else if (server_.bind_to_port(options_.host, options_.port)) {
    port_ = options_.port;
  }
  if (port_ <= 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen for HTTP on ", options_.host, ":", options_.port));
  }
  thread_ = std::thread([this] { server_.listen_after_bind(); });
  return absl::OkStatus();
}

void HttpServer::Stop() {
  server_.stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace tandem::api
