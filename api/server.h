// The HTTP server of the coordinator: cpp-httplib with a worker pool (a streamed answer
// holds its worker while it streams), optional Bearer-key authentication for /v1/, and
// JSON replies and errors in the OpenAI shape. Route sets register on routes() before
// Start(): the OpenAI API (api/openai_routes.h) and, later, a dashboard.
#pragma once

#include <httplib.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace tandem::api {

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                    // 0: any free port (see port())
  std::vector<std::string> api_keys;  // empty: no authentication
  int threads = 64;                   // concurrent connections served
  size_t max_body_bytes = 8 << 20;
  // An idle keep-alive connection holds a worker this long; stopping waits for it too.
  int keep_alive_seconds = 5;
};

// "HOST:PORT" with PORT in [0, 65535].
absl::Status ParseHostPort(const std::string& address, std::string* host, int* port);
// One key a line; blank lines and surrounding spaces are ignored; at least one key.
absl::StatusOr<std::vector<std::string>> ReadApiKeys(const std::string& path);

// A JSON reply, and an error reply {"error": {...}} with the status's HTTP code (and
// Retry-After on 429 and 503).
void SendJson(httplib::Response& res, const nlohmann::json& body, int http_status = 200);
void SendError(httplib::Response& res, const absl::Status& status);

class HttpServer {
 public:
  explicit HttpServer(HttpServerOptions options);
  ~HttpServer();  // stops serving
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  httplib::Server& routes() { return server_; }
  // Binds and serves on a thread of its own; an error when the address cannot be bound.
  absl::Status Start();
  int port() const { return port_; }
  void Stop();

 private:
  HttpServerOptions options_;
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace tandem::api
