// The cost of mutual TLS on a loopback cluster: 2 nodes (real processes, real gRPC), once
// with plaintext links and once as `tandem run --tls` runs it (every link mutual TLS),
// alternated in the same run so both see the same machine. Prints the medians of one
// session's decode tokens/s and of the aggregate tokens/s of several sessions at once.
// Passes or fails on nothing.
//
//   tls_cost_bench --model M.gguf [--nodes 2] [-n 64] [--sessions 4] [--rounds 3]
//                  [--threads-per-node T]
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "cli/local_cluster.h"
#include "net/client.h"
#include "net/link_security.h"

namespace tandem {
namespace {

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

v1::GenerateRequest Request(const std::string& prompt, int n) {
  v1::GenerateRequest r;
  r.set_prompt(prompt);
  r.set_n_predict(n);
  r.mutable_sampling()->set_temperature(0);
  r.mutable_sampling()->set_top_p(1);
  r.mutable_sampling()->set_repeat_penalty(1);
  return r;
}

struct Rates {
  std::vector<double> single;     // one session's decode tokens/s
  std::vector<double> aggregate;  // tokens/s of all sessions, wall clock
};

// One cluster up, `reps` measurements of each kind.
absl::Status Measure(const std::string& exe, const cli::LocalClusterOptions& options, int n,
                     int sessions, int reps, Rates* rates) {
  cli::LocalCluster cluster(exe);
  if (absl::Status s = cluster.Start(options); !s.ok()) return s;
  const std::string prompt = "Once upon a time there was a little girl who lived in a village";
  for (int r = 0; r < reps + 1; ++r) {
    auto out = RemoteGenerate(cluster.address(), Request(prompt, n), nullptr);
    if (!out.ok()) return out.status();
    if (r == 0) continue;  // warm-up: connections, caches
    rates->single.push_back(out->n_decode_steps / (out->decode_ms / 1e3));
  }
  for (int r = 0; r < reps; ++r) {
    std::vector<std::thread> threads;
    std::vector<size_t> tokens(sessions);
    const auto t0 = std::chrono::steady_clock::now();
    for (int s = 0; s < sessions; ++s) {
      threads.emplace_back([&, s] {
        auto out =
            RemoteGenerate(cluster.address(), Request(absl::StrCat(prompt, " ", s), n), nullptr);
        tokens[s] = out.ok() ? out->ids.size() : 0;
      });
    }
    for (auto& t : threads) t.join();
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    size_t total = 0;
    for (size_t t : tokens) total += t;
    rates->aggregate.push_back(total / seconds);
  }
  InstallLinkCredentials({});  // the TLS cluster's client certificate goes with it
  return absl::OkStatus();
}

}  // namespace
}  // namespace tandem

int main(int argc, char** argv) {
  using namespace tandem;
  CLI::App app{"Tandem: the cost of mutual TLS on a loopback cluster"};
  std::string model;
  int nodes = 2, n = 64, sessions = 4, rounds = 3, reps = 3, threads = 1;
  std::string exe = std::filesystem::path(std::filesystem::read_symlink("/proc/self/exe"))
                        .parent_path()
                        .parent_path() /
                    "cli" / "tandem";
  app.add_option("-m,--model", model, "GGUF model")->required();
  app.add_option("--nodes", nodes, "Nodes")->capture_default_str();
  app.add_option("-n", n, "Tokens per session")->capture_default_str();
  app.add_option("--sessions", sessions, "Concurrent sessions (aggregate)")->capture_default_str();
  app.add_option("--rounds", rounds, "Plaintext/TLS rounds, alternated")->capture_default_str();
  app.add_option("--reps", reps, "Measurements per round")->capture_default_str();
  app.add_option("--threads-per-node", threads, "Threads per node")->capture_default_str();
  app.add_option("--tandem", exe, "Path to the tandem binary")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  Rates plain, tls;
  for (int round = 0; round < rounds; ++round) {
    for (bool secure : {false, true}) {
      cli::LocalClusterOptions options;
      options.model = model;
      options.nodes = nodes;
      options.threads = threads;
      options.tls = secure;
      options.coordinator_args = {"--ctx-size", "512"};
      absl::Status s = Measure(exe, options, n, sessions, reps, secure ? &tls : &plain);
      if (!s.ok()) {
        std::fprintf(stderr, "tls_cost_bench: %s\n", std::string(s.message()).c_str());
        return 1;
      }
    }
  }
  std::printf(
      "model %s, %d nodes on loopback, %d tokens per session, %d thread(s) per node,\n"
      "medians of %d rounds x %d measurements, plaintext and TLS alternated\n\n",
      model.c_str(), nodes, n, threads, rounds, reps);
  std::printf("%-10s %22s %26s\n", "links", "1 session decode tok/s",
              absl::StrCat(sessions, " sessions aggregate tok/s").c_str());
  std::printf("%-10s %22.1f %26.1f\n", "plaintext", Median(plain.single), Median(plain.aggregate));
  std::printf("%-10s %22.1f %26.1f\n", "mutual TLS", Median(tls.single), Median(tls.aggregate));
  std::printf("%-10s %21.1f%% %25.1f%%\n", "TLS cost",
              100 * (1 - Median(tls.single) / Median(plain.single)),
              100 * (1 - Median(tls.aggregate) / Median(plain.aggregate)));
  return 0;
}
