// `tandem bench`: prompt and generation speed of a model in this process, next to the
// memory-bandwidth roofline measured in the same run. Generation of one token reads every
// weight matrix once, so its ceiling is (read bandwidth) / (weight bytes per token);
// decode_efficiency is how close the achieved speed comes to it.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "cli/commands.h"
#include "cli/model_loading.h"
#include "nlohmann/json.hpp"
#include "node/forward.h"
#include "node/kernels/bandwidth.h"
#include "node/kernels/matmul.h"
#include "node/kernels/thread_pool.h"
#include "node/local_engine.h"

namespace tandem::cli {
namespace {

using Clock = std::chrono::steady_clock;

struct BenchOptions {
  std::string model;
  int threads = 0;
  int64_t prompt_tokens = 128;
  int64_t gen_tokens = 64;
  int reps = 3;
  uint64_t seed = 1;
  int64_t bandwidth_mib = 1024;
  bool json = false;
};

struct Stats {
  double median = 0, min = 0, max = 0;
};

Stats Summarize(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return {n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2, v.front(), v.back()};
}

// Bytes of weights one generated token reads: every matrix of every layer and the output
// head (the embedding row is negligible), with the bytes per weight type.
uint64_t DecodeWeightBytes(const ModelShard& shard, std::map<std::string, uint64_t>* by_type) {
  uint64_t total = 0;
  auto add = [&](const PreparedMatrix& m) {
    const uint64_t bytes = static_cast<uint64_t>(RowBytes(m.type(), m.cols()) * m.rows());
    total += bytes;
    (*by_type)[std::string(GgmlTypeName(m.type()))] += bytes;
  };
  for (int il = shard.range().layer_first; il < shard.range().layer_last; ++il) {
    const LayerWeights& w = shard.layer(il);
    for (const PreparedMatrix* m : {&w.wq, &w.wk, &w.wv, &w.wo, &w.w_gate, &w.w_up, &w.w_down}) {
      add(*m);
    }
  }
  add(shard.output());
  return total;
}

struct RepTimes {
  double prompt_seconds = 0;
  double decode_seconds = 0;
};

// One repetition on a fresh KV cache: the prompt (in the frames a cluster would send),
// then gen_tokens greedy
// steps of one token each.
absl::StatusOr<RepTimes> RunRep(LocalEngine& engine, const std::vector<TokenId>& prompt,
                                int64_t gen_tokens) {
  GenerationRequest request;
  request.prompt_ids = prompt;
  request.n_predict = static_cast<int32_t>(gen_tokens + 1);  // the prompt's token, then the steps
  request.sampling.temperature = 0;
  auto result = engine.Generate(
      request, [](TokenId) { return false; }, [](TokenId) { return true; });
  if (!result.ok()) return result.status();
  return RepTimes{result->prompt_seconds, result->decode_seconds};
}

int RunBench(const BenchOptions& o) {
  auto model = LoadModel(o.model);
  if (!model.ok()) return ReportError(model.status());
  const Hparams& h = model->hparams;
  const int threads = o.threads > 0
                          ? o.threads
                          : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  auto engine = LocalEngine::Create(model->file, {threads, o.prompt_tokens + o.gen_tokens + 1});
  if (!engine.ok()) return ReportError(engine.status());
  ThreadPool& pool = (*engine)->pool();

  std::mt19937_64 rng(o.seed);
  std::uniform_int_distribution<TokenId> token(0, static_cast<TokenId>(h.n_vocab - 1));
  std::vector<TokenId> prompt(static_cast<size_t>(o.prompt_tokens));
  for (TokenId& t : prompt) t = token(rng);

  // Warm-up: faults in scratch buffers and caches, wakes the pool.
  if (auto warm = RunRep(**engine, prompt, std::min<int64_t>(o.gen_tokens, 4)); !warm.ok()) {
    return ReportError(warm.status());
  }
  // The bandwidth is measured before, between and after the timed reps and the best kept:
  // on a shared machine other work only ever lowers it, and a ceiling must not be low.
  const size_t bandwidth_bytes = static_cast<size_t>(o.bandwidth_mib) << 20;
  std::vector<double> bandwidth_samples = {MeasureReadBandwidthGBs(pool, bandwidth_bytes)};
  std::vector<double> prompt_tps, decode_tps;
  for (int r = 0; r < o.reps; ++r) {
    auto times = RunRep(**engine, prompt, o.gen_tokens);
    if (!times.ok()) return ReportError(times.status());
    prompt_tps.push_back(static_cast<double>(o.prompt_tokens) / times->prompt_seconds);
    decode_tps.push_back(static_cast<double>(o.gen_tokens) / times->decode_seconds);
    if (r == o.reps / 2)
      bandwidth_samples.push_back(MeasureReadBandwidthGBs(pool, bandwidth_bytes));
  }
  bandwidth_samples.push_back(MeasureReadBandwidthGBs(pool, bandwidth_bytes));
  const Stats prompt_stats = Summarize(prompt_tps), decode_stats = Summarize(decode_tps);

  std::map<std::string, uint64_t> bytes_by_type;
  const uint64_t bytes_per_token = DecodeWeightBytes((*engine)->shard(), &bytes_by_type);
  const double bandwidth_gbs =
      *std::max_element(bandwidth_samples.begin(), bandwidth_samples.end());
  const double roofline_tps = bandwidth_gbs * 1e9 / static_cast<double>(bytes_per_token);
  const double efficiency = decode_stats.median / roofline_tps;

  if (o.json) {
    nlohmann::json j;
    j["model"] = o.model;
    j["threads"] = threads;
    j["isa"] = KernelIsaName(BestKernelIsa());
    j["n_layer"] = h.n_layer;
    j["n_embd"] = h.n_embd;
    j["prompt_tokens"] = o.prompt_tokens;
    j["gen_tokens"] = o.gen_tokens;
    j["reps"] = o.reps;
    j["prompt_tps"] = prompt_stats.median;
    j["prompt_tps_min"] = prompt_stats.min;
    j["prompt_tps_max"] = prompt_stats.max;
    j["decode_tps"] = decode_stats.median;
    j["decode_tps_min"] = decode_stats.min;
    j["decode_tps_max"] = decode_stats.max;
    j["bytes_per_token"] = bytes_per_token;
    j["bytes_per_token_by_type"] = bytes_by_type;
    j["bandwidth_gbs"] = bandwidth_gbs;
    j["bandwidth_gbs_samples"] = bandwidth_samples;
    j["roofline_decode_tps"] = roofline_tps;
    j["decode_efficiency"] = efficiency;
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  std::string types;
  for (const auto& [name, bytes] : bytes_by_type) {
    char share[32];
    std::snprintf(share, sizeof(share), "%.0f%%",
                  100.0 * static_cast<double>(bytes) / static_cast<double>(bytes_per_token));
    absl::StrAppend(&types, types.empty() ? "" : ", ", name, " ", share);
  }
  std::printf("model       %s (%lld layers, n_embd %lld; weights %s)\n", o.model.c_str(),
              static_cast<long long>(h.n_layer), static_cast<long long>(h.n_embd), types.c_str());
  std::printf("threads     %d (%s kernels), %d reps after one warm-up\n", threads,
              KernelIsaName(BestKernelIsa()), o.reps);
  std::printf("prompt      %5lld tokens  %9.2f tok/s  (min %.2f, max %.2f)\n",
              static_cast<long long>(o.prompt_tokens), prompt_stats.median, prompt_stats.min,
              prompt_stats.max);
  std::printf("generation  %5lld tokens  %9.2f tok/s  (min %.2f, max %.2f)\n",
              static_cast<long long>(o.gen_tokens), decode_stats.median, decode_stats.min,
              decode_stats.max);
  std::printf(
      "roofline    %.1f MB of weights per token, read bandwidth %.1f GB/s (best of %zu) -> "
      "%.2f tok/s\n",
      static_cast<double>(bytes_per_token) / 1e6, bandwidth_gbs, bandwidth_samples.size(),
      roofline_tps);
  std::printf("decode efficiency  %.3f\n", efficiency);
  return 0;
}

}  // namespace

void RegisterBenchCommand(CLI::App& app, RunState& state) {
  auto o = std::make_shared<BenchOptions>();
  CLI::App* cmd = app.add_subcommand(
      "bench", "Prompt and generation tokens/s of a model, against the memory-bandwidth roofline");
  cmd->add_option("-m,--model", o->model, "GGUF model file")->required();
  cmd->add_option("-t,--threads", o->threads, "Threads (default: all cores)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("-p,--prompt-tokens", o->prompt_tokens, "Prompt tokens, processed as one batch")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20))
      ->capture_default_str();
  cmd->add_option("-n,--gen-tokens", o->gen_tokens, "Tokens to generate, one at a time")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20))
      ->capture_default_str();
  cmd->add_option("-r,--reps", o->reps, "Timed repetitions (each on a fresh KV cache)")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  cmd->add_option("--seed", o->seed, "Seed of the random prompt tokens")->capture_default_str();
  cmd->add_option("--bandwidth-mib", o->bandwidth_mib, "Buffer of the bandwidth measurement (MiB)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20))
      ->capture_default_str();
  cmd->add_flag("--json", o->json, "Print one JSON object");
  cmd->callback([o, &state] { state.exit_code = RunBench(*o); });
}

}  // namespace tandem::cli
