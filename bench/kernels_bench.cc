// Microbenchmarks of the node kernels. Numbers, never pass/fail. Run e.g.
//   build/bench/kernels_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only
// GB/s counts weight bytes read per second; tok_s_1B is the generation rate those bytes
// would give for a 1B Llama (n_embd 2048, n_ff 8192, 16 layers: 973 M weights) of that type.
#include <benchmark/benchmark.h>

#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "node/kernels/bandwidth.h"
#include "node/kernels/matmul.h"
#include "node/kernels/ops.h"
#include "node/kernels/prepared_matrix.h"
#include "node/kernels/quants.h"
#include "node/kernels/vec_dot.h"

namespace tandem {
namespace {

constexpr int kThreads = 2;
constexpr double k1BWeights =
    16.0 * (2 * 2048.0 * 2048 + 2 * 512.0 * 2048 + 3 * 8192.0 * 2048) + 512.0 * 2048;

const GgmlType kTypes[] = {GgmlType::kF32,  GgmlType::kF16,  GgmlType::kBF16, GgmlType::kQ8_0,
                           GgmlType::kQ4_0, GgmlType::kQ4_1, GgmlType::kQ5_0, GgmlType::kQ5_1,
                           GgmlType::kQ4_K, GgmlType::kQ5_K, GgmlType::kQ6_K};

ThreadPool& Pool() {
  static ThreadPool pool(kThreads);
  return pool;
}

std::vector<float> Random(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// Enough distinct copies of a (rows, cols) matrix that cycling through them reads from
// DRAM (>= 256 MiB in total, far beyond the L3), as a real forward pass does.
struct MatrixSet {
  std::vector<PreparedMatrix> matrices;
  std::vector<uint8_t> source;
  std::vector<uint8_t> plain;  // all copies, for the not-repacked variant
  size_t bytes_each = 0;
};

MatrixSet MakeMatrices(GgmlType type, int64_t rows, int64_t cols, bool repack, bool stream) {
  MatrixSet set;
  const std::vector<float> w = Random(rows * cols, 1);
  set.source = QuantizeMatrix(type, w.data(), rows, cols);
  set.bytes_each = set.source.size();
  const size_t copies = stream ? std::max<size_t>(2, (size_t{256} << 20) / set.bytes_each) : 1;
  if (!repack) {
    // One big plain heap buffer holding all copies (ordinary 4 KiB pages).
    set.plain.resize(set.bytes_each * copies);
    for (size_t i = 0; i < copies; ++i) {
      std::memcpy(set.plain.data() + i * set.bytes_each, set.source.data(), set.bytes_each);
      set.matrices.push_back(
          *Prepare({type, rows, cols, set.plain.data() + i * set.bytes_each}, {.repack = false}));
    }
  } else {
    for (size_t i = 0; i < copies; ++i) {
      set.matrices.push_back(*Prepare({type, rows, cols, set.source.data()}));
    }
  }
  return set;
}

void SetCounters(benchmark::State& state, GgmlType type, double bytes_per_iter) {
  state.counters["GB/s"] =
      benchmark::Counter(bytes_per_iter / 1e9, benchmark::Counter::kIsIterationInvariantRate);
  const double bytes_1b = k1BWeights * TraitsOf(type).block_bytes / TraitsOf(type).block_elements;
  state.counters["tok_s_1B"] =
      benchmark::Counter(bytes_per_iter / bytes_1b, benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(std::string(GgmlTypeName(type)) + " " + KernelIsaName(BestKernelIsa()));
}

// Args: type id, rows, cols, repack (huge pages), stream (from DRAM).
void BM_MatVec(benchmark::State& state) {
  const GgmlType type = static_cast<GgmlType>(state.range(0));
  const int64_t rows = state.range(1), cols = state.range(2);
  MatrixSet set = MakeMatrices(type, rows, cols, state.range(3) != 0, state.range(4) != 0);
  const std::vector<float> x = Random(cols, 2);
  std::vector<float> y(rows);
  size_t i = 0;
  for (auto _ : state) {
    MatMul(set.matrices[i], x.data(), 1, y.data(), Pool());
    benchmark::DoNotOptimize(y.data());
    if (++i == set.matrices.size()) i = 0;
  }
  SetCounters(state, type, static_cast<double>(set.bytes_each));
}

void MatVecArgs(benchmark::internal::Benchmark* b) {
  for (GgmlType type : kTypes) {
    for (auto [rows, cols] : {std::pair{2048, 2048}, std::pair{8192, 2048}}) {
      b->Args({static_cast<int64_t>(type), rows, cols, 1, 1});  // repacked, from DRAM
    }
    b->Args({static_cast<int64_t>(type), 8192, 2048, 0, 1});  // mmap-like 4 KiB pages, DRAM
    b->Args({static_cast<int64_t>(type), 2048, 2048, 1, 0});  // in cache: compute ceiling
  }
  b->ArgNames({"type", "rows", "cols", "repack", "stream"});
}
BENCHMARK(BM_MatVec)->Apply(MatVecArgs)->UseRealTime();

// Batch 128 (prompt processing): sgemm on dequantized tiles (path 0), the integer kernel
// per token (1), or MatMul on a PreparedMatrix (2: what the forward pass runs, e.g. the
// interleaved Q4_0 / Q8_0 / Q4_K / Q5_K / Q6_K layout with 8 tokens per pass over the
// weights).
void BM_Gemm(benchmark::State& state) {
  const GgmlType type = static_cast<GgmlType>(state.range(0));
  const int64_t rows = state.range(1), cols = state.range(2), n_batch = 128;
  const int64_t path = state.range(3);
  const std::vector<float> w = Random(rows * cols, 1);
  const std::vector<uint8_t> bytes = QuantizeMatrix(type, w.data(), rows, cols);
  const WeightMatrix m{type, rows, cols, bytes.data()};
  const std::vector<float> x = Random(n_batch * cols, 2);
  std::vector<float> y(n_batch * rows);
  const PreparedMatrix prepared = *Prepare(m);
  for (auto _ : state) {
    if (path == 2) {
      MatMul(prepared, x.data(), n_batch, y.data(), Pool());
    } else if (path == 1) {
      kernels::MatVecPath({m}, x.data(), n_batch, y.data(), Pool(), BestKernelIsa());
    } else {
      kernels::SgemmPath({m}, x.data(), n_batch, y.data(), Pool());
    }
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * rows * cols * n_batch / 1e9,
                                                 benchmark::Counter::kIsIterationInvariantRate);
  state.counters["tok/s"] =
      benchmark::Counter(n_batch, benchmark::Counter::kIsIterationInvariantRate);
  const char* names[] = {" sgemm", " integer", " prepared"};
  state.SetLabel(std::string(GgmlTypeName(type)) + names[path]);
}
void GemmArgs(benchmark::internal::Benchmark* b) {
  for (GgmlType type : {GgmlType::kF32, GgmlType::kF16, GgmlType::kQ8_0, GgmlType::kQ4_0,
                        GgmlType::kQ4_K, GgmlType::kQ5_K, GgmlType::kQ6_K}) {
    for (int path : {0, 1, 2}) {
      if (type == GgmlType::kF32 && path == 1) continue;
      for (auto [rows, cols] : {std::pair{2048, 2048}, std::pair{8192, 2048}}) {
        b->Args({static_cast<int64_t>(type), rows, cols, path});
      }
    }
  }
  b->ArgNames({"type", "rows", "cols", "path"});
}
BENCHMARK(BM_Gemm)->Apply(GemmArgs)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_RmsNorm(benchmark::State& state) {
  const int64_t n = state.range(0);
  const auto x = Random(n, 1), w = Random(n, 2);
  std::vector<float> out(n);
  for (auto _ : state) {
    RmsNorm(x.data(), w.data(), n, 1e-5f, out.data());
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["GB/s"] =
      benchmark::Counter(12.0 * n / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_RmsNorm)->Arg(2048)->Arg(8192);

void BM_Softmax(benchmark::State& state) {
  const int64_t n = state.range(0);
  const auto x0 = Random(n, 1);
  std::vector<float> x(n);
  for (auto _ : state) {
    std::memcpy(x.data(), x0.data(), 4 * n);
    Softmax(x.data(), n);
    benchmark::DoNotOptimize(x.data());
  }
  state.counters["GB/s"] =
      benchmark::Counter(8.0 * n / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_Softmax)->Arg(512)->Arg(4096);

void BM_SwiGlu(benchmark::State& state) {
  const int64_t n = state.range(0);
  const auto g = Random(n, 1), u = Random(n, 2);
  std::vector<float> out(n);
  for (auto _ : state) {
    SwiGlu(g.data(), u.data(), n, out.data());
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["GB/s"] =
      benchmark::Counter(12.0 * n / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_SwiGlu)->Arg(8192);

void BM_DotAxpy(benchmark::State& state) {
  const int64_t n = state.range(0);
  const auto a = Random(n, 1);
  auto b = Random(n, 2);
  for (auto _ : state) {
    const float d = Dot(a.data(), b.data(), n);
    Axpy(d * 1e-9f, a.data(), b.data(), n);
    benchmark::DoNotOptimize(b.data());
  }
  state.counters["GB/s"] =
      benchmark::Counter(20.0 * n / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_DotAxpy)->Arg(64)->Arg(128);

void BM_ReadBandwidth(benchmark::State& state) {
  double gbs = 0;
  for (auto _ : state) gbs = MeasureReadBandwidthGBs(Pool(), size_t{1} << 30);
  state.counters["GB/s"] = gbs;
}
BENCHMARK(BM_ReadBandwidth)->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace tandem

BENCHMARK_MAIN();
