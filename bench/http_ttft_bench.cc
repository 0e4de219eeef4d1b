// Time to first token through the OpenAI-compatible HTTP API against the gRPC Client
// service of the same running coordinator (`tandem generate --coordinator` uses the
// latter): the difference is what the HTTP layer adds. Prints medians; never fails on time.
//   http_ttft_bench --coordinator 127.0.0.1:PORT --http 127.0.0.1:PORT [-r 30] [-p PROMPT]
#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "api/server.h"
#include "net/client.h"
#include "net/convert.h"
#include "nlohmann/json.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double Ms(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

}  // namespace

int main(int argc, char** argv) {
  std::string coordinator, http, prompt = "Once upon a time";
  int runs = 30;
  CLI::App app("TTFT: HTTP API vs gRPC on one coordinator");
  app.add_option("--coordinator", coordinator, "gRPC HOST:PORT")->required();
  app.add_option("--http", http, "HTTP HOST:PORT")->required();
  app.add_option("-r,--runs", runs, "Requests per path")->check(CLI::PositiveNumber);
  app.add_option("-p,--prompt", prompt, "Prompt");
  CLI11_PARSE(app, argc, argv);

  std::string host;
  int port = 0;
  if (absl::Status s = tandem::api::ParseHostPort(http, &host, &port); !s.ok()) {
    std::fprintf(stderr, "%s\n", std::string(s.message()).c_str());
    return 2;
  }
  httplib::Client client(host, port);
  client.set_keep_alive(true);
  client.set_tcp_nodelay(true);
  const std::string body = nlohmann::json{
      {"prompt", prompt},
      {"max_tokens", 1},
      {"temperature", 0},
      {"stream", true}}.dump();

  std::vector<double> grpc_ms, http_ms, server_ms;
  for (int i = 0; i < runs; ++i) {
    // gRPC, as `tandem generate --coordinator` does it (a channel per call).
    tandem::v1::GenerateRequest req;
    req.set_prompt(prompt);
    req.set_n_predict(1);
    tandem::SamplingParams greedy;
    greedy.temperature = 0;
    *req.mutable_sampling() = tandem::SamplingToProto(greedy);
    Clock::time_point start = Clock::now(), first;
    bool got = false;
    auto r = tandem::RemoteGenerate(coordinator, req, [&](int32_t, const std::string&) {
      if (!got) first = Clock::now(), got = true;
    });
    if (!r.ok() || !got) {
      std::fprintf(stderr, "gRPC: %s\n", std::string(r.status().message()).c_str());
      return 1;
    }
    grpc_ms.push_back(Ms(start, first));
    server_ms.push_back(r->prompt_ms);

    // HTTP: the first server-sent event carries the first token.
    httplib::Request hreq;
    hreq.method = "POST";
    hreq.path = "/v1/completions";
    hreq.body = body;
    hreq.set_header("Content-Type", "application/json");
    got = false;
    hreq.content_receiver = [&](const char*, size_t, uint64_t, uint64_t) {
      if (!got) first = Clock::now(), got = true;
      return true;
    };
    httplib::Response hres;
    httplib::Error error;
    start = Clock::now();
    if (!client.send(hreq, hres, error) || hres.status != 200 || !got) {
      std::fprintf(stderr, "HTTP: error %d, status %d\n", static_cast<int>(error), hres.status);
      return 1;
    }
    http_ms.push_back(Ms(start, first));
  }
  std::printf("runs %d, prompt \"%s\", 1 token, greedy\n", runs, prompt.c_str());
  std::printf("%-34s %8.3f ms\n", "gRPC Client (tandem generate)", Median(grpc_ms));
  std::printf("%-34s %8.3f ms\n", "HTTP /v1/completions (stream)", Median(http_ms));
  std::printf("%-34s %8.3f ms\n", "coordinator: session to token", Median(server_ms));
  std::printf("%-34s %+8.3f ms\n", "HTTP minus gRPC", Median(http_ms) - Median(grpc_ms));
  return 0;
}
