// Pipeline benchmark on loopback: for 1, 2, 3 … nodes (real processes, real gRPC), the
// time to first token, generation tokens/s of one session, aggregate tokens/s with many
// sessions at once, and the cost of a hop; the single-process engine alongside, measured
// in the same run. Prints numbers; passes or fails on nothing.
//
//   pipeline_bench --model M.gguf [--nodes 1,2,3] [--sessions 1,2,4,8] [-n 64]
//                  [--threads-per-node T] [--reps 3]
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "cli/local_cluster.h"
#include "model/gguf.h"
#include "model/tokenizer.h"
#include "net/client.h"
#include "node/local_engine.h"

namespace tandem {
namespace {

using Clock = std::chrono::steady_clock;

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

std::vector<int> ParseList(const std::string& s) {
  std::vector<int> out;
  for (absl::string_view part : absl::StrSplit(s, ',')) {
    int v;
    if (absl::SimpleAtoi(part, &v)) out.push_back(v);
  }
  return out;
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

struct Single {
  double ttft_ms = 0;
  double ms_per_token = 0;
};

// One process, all layers: the baseline.
Single LocalRun(const std::string& model, int threads, const std::string& prompt, int n, int reps) {
  auto f = GgufFile::Open(model);
  std::shared_ptr<const GgufFile> file = std::move(*f);
  auto tok = Tokenizer::FromGguf(*file);
  auto engine = LocalEngine::Create(file, {threads, /*n_ctx=*/512});
  if (!engine.ok()) {
    std::fprintf(stderr, "pipeline_bench: %s\n", std::string(engine.status().message()).c_str());
    std::exit(1);
  }
  std::vector<double> ttft, per_token;
  for (int r = 0; r < reps + 1; ++r) {
    GenerationRequest req;
    req.prompt_ids = (*tok)->Encode(prompt, true, true);
    req.n_predict = n;
    req.sampling.temperature = 0;
    auto out = (*engine)->Generate(
        req, [](TokenId) { return false; }, [](TokenId) { return true; });
    if (r == 0) continue;  // warm-up
    ttft.push_back(out->prompt_seconds * 1e3);
    per_token.push_back(out->decode_seconds * 1e3 / out->n_decode_steps);
  }
  return {Median(ttft), Median(per_token)};
}

}  // namespace
}  // namespace tandem

int main(int argc, char** argv) {
  using namespace tandem;
  CLI::App app{"Tandem pipeline benchmark (loopback)"};
  std::string model, nodes_list = "1,2,3", sessions_list = "1,2,4,8";
  std::string prompt =
      "Once upon a time there was a little girl who lived in a village near the forest";
  int n = 64, threads = 0, reps = 3;
  std::string exe = std::filesystem::path(std::filesystem::read_symlink("/proc/self/exe"))
                        .parent_path()
                        .parent_path() /
                    "cli" / "tandem";
  app.add_option("-m,--model", model, "GGUF model")->required();
  app.add_option("--nodes", nodes_list, "Node counts to measure")->capture_default_str();
  app.add_option("--sessions", sessions_list, "Concurrent session counts")->capture_default_str();
  app.add_option("-n", n, "Tokens per session")->capture_default_str();
  app.add_option("--threads-per-node", threads, "Threads per node (default: all cores)");
  app.add_option("--reps", reps, "Repetitions (medians)")->capture_default_str();
  app.add_option("--tandem", exe, "Path to the tandem binary")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (threads <= 0) threads = static_cast<int>(std::thread::hardware_concurrency());

  Single local = LocalRun(model, threads, prompt, n, reps);
  std::printf("model %s, %d tokens per session, %d threads per process, medians of %d\n\n",
              model.c_str(), n, threads, reps);
  std::printf("%-16s %10s %12s %12s %10s\n", "engine", "TTFT ms", "ms/token", "tokens/s",
              "vs local");
  std::printf("%-16s %10.2f %12.3f %12.2f %10.2f\n", "single process", local.ttft_ms,
              local.ms_per_token, 1e3 / local.ms_per_token, 1.0);

  std::vector<std::pair<int, std::vector<double>>> aggregate, decode_aggregate;
  for (int nodes : ParseList(nodes_list)) {
    cli::LocalCluster cluster(exe);
    cli::LocalClusterOptions options;
    options.model = model;
    options.nodes = nodes;
    options.threads = threads;
    options.coordinator_args = {"--ctx-size", "512"};
    if (absl::Status s = cluster.Start(options); !s.ok()) {
      std::fprintf(stderr, "cluster failed: %s\n", std::string(s.message()).c_str());
      return 1;
    }
    std::vector<double> ttft, per_token;
    for (int r = 0; r < reps + 1; ++r) {
      auto out = RemoteGenerate(cluster.address(), Request(prompt, n), nullptr);
      if (!out.ok()) {
        std::fprintf(stderr, "generation failed: %s\n",
                     std::string(out.status().message()).c_str());
        return 1;
      }
      if (r == 0) continue;
      ttft.push_back(out->prompt_ms);
      per_token.push_back(out->decode_ms / out->n_decode_steps);
    }
    const double ms = Median(per_token);
    // Hops per token: coordinator -> first stage, stage -> stage (nodes - 1), last -> coordinator.
    const double hop_ms = (ms - local.ms_per_token) / (nodes + 1);
    std::printf("%-16s %10.2f %12.3f %12.2f %10.2f   (per hop %.3f ms)\n",
                absl::StrCat(nodes, nodes == 1 ? " node" : " nodes").c_str(), Median(ttft), ms,
                1e3 / ms, local.ms_per_token / ms, hop_ms);
    std::vector<double> agg, decode_agg;
    for (int sessions : ParseList(sessions_list)) {
      std::vector<double> runs, decode_runs;
      for (int r = 0; r < reps; ++r) {
        std::vector<std::thread> threads_v;
        std::vector<size_t> tokens(sessions);
        std::vector<double> decode_rate(sessions);
        const auto t0 = Clock::now();
        for (int s = 0; s < sessions; ++s) {
          threads_v.emplace_back([&, s] {
            auto out = RemoteGenerate(cluster.address(),
                                      Request(prompt + " " + std::to_string(s), n), nullptr);
            tokens[s] = out.ok() ? out->ids.size() : 0;
            decode_rate[s] =
                out.ok() && out->decode_ms > 0 ? out->n_decode_steps / (out->decode_ms / 1e3) : 0;
          });
        }
        for (auto& t : threads_v) t.join();
        const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
        size_t total = 0;
        for (size_t t : tokens) total += t;
        runs.push_back(total / seconds);
        double sum = 0;
        for (double r : decode_rate) sum += r;
        decode_runs.push_back(sum);
      }
      agg.push_back(Median(runs));
      decode_agg.push_back(Median(decode_runs));
    }
    aggregate.push_back({nodes, agg});
    decode_aggregate.push_back({nodes, decode_agg});
  }
  std::printf("\naggregate tokens/s (all sessions, wall clock incl. prefill)\n%-10s", "nodes");
  for (int s : ParseList(sessions_list)) std::printf(" %9d", s);
  std::printf("   (x of 1 session)\n");
  for (const auto& [nodes, agg] : aggregate) {
    std::printf("%-10d", nodes);
    for (double v : agg) std::printf(" %9.1f", v);
    std::printf("   ");
    for (double v : agg) std::printf(" %.2fx", v / agg[0]);
    std::printf("\n");
  }
  std::printf(
      "\naggregate decode tokens/s (sum of the sessions' decode rates, prefill excluded)\n%-10s",
      "nodes");
  for (int s : ParseList(sessions_list)) std::printf(" %9d", s);
  std::printf("   (x of 1 session)\n");
  for (const auto& [nodes, agg] : decode_aggregate) {
    std::printf("%-10d", nodes);
    for (double v : agg) std::printf(" %9.1f", v);
    std::printf("   ");
    for (double v : agg) std::printf(" %.2fx", v / agg[0]);
    std::printf("\n");
  }
  return 0;
}
