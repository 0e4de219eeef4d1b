#include "node/calibration.h"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "base/fp16.h"
#include "node/kernels/bandwidth.h"
#include "node/kernels/matmul.h"
#include "node/kernels/prepared_matrix.h"

namespace tandem {

namespace {

// Median seconds of a one-token product on `w` over about 0.1 s of repetitions: robust
// to a moment of preemption on a shared machine, yet (unlike the best case) it includes
// the ordinary interference a node sees while it serves.
double SecondsPerProduct(const PreparedMatrix& w, int64_t rows, int64_t cols, ThreadPool& pool) {
  std::vector<float> x(static_cast<size_t>(cols), 0.5f), y(static_cast<size_t>(rows));
  MatMul(w, x.data(), 1, y.data(), pool);  // warm up
  const auto start = std::chrono::steady_clock::now();
  std::vector<double> samples;
  for (int reps = 0; reps < 10000; ++reps) {
    const auto t0 = std::chrono::steady_clock::now();
    MatMul(w, x.data(), 1, y.data(), pool);
    const auto t1 = std::chrono::steady_clock::now();
    samples.push_back(std::chrono::duration<double>(t1 - t0).count());
    if (std::chrono::duration<double>(t1 - start).count() > 0.1) break;
  }
  std::nth_element(samples.begin(), samples.begin() + samples.size() / 2, samples.end());
  return samples[samples.size() / 2];
}

}  // namespace

Calibration Calibrate(GgmlType type, int64_t rows, int64_t cols, ThreadPool& pool) {
  Calibration c;
  c.bandwidth_gbs = MeasureReadBandwidthGBs(pool, 64u << 20);
  const int64_t row_bytes = RowBytes(type, cols);
  if (row_bytes <= 0 || !MatMulSupports(type)) return c;
  // 96 MiB streams from DRAM past any last-level cache, as a model's weights do; its first
  // rows (at most 4 MiB, the sample tensor's size at most) stay in cache.
  const int64_t stream_rows = std::max<int64_t>(1, (96 << 20) / row_bytes);
  const int64_t cached_rows = std::max<int64_t>(1, std::min<int64_t>(rows, (4 << 20) / row_bytes));
  // Bytes that decode to small finite values in every format: f16/bf16 0x3c00-ish
  // patterns, and block scales that are ordinary halves.
  std::vector<uint8_t> bytes(static_cast<size_t>(stream_rows * row_bytes));
  std::mt19937 rng(1);
  for (size_t i = 0; i + 1 < bytes.size(); i += 2) {
    uint16_t h = Fp32ToFp16(std::uniform_real_distribution<float>(-0.01f, 0.01f)(rng));
    bytes[i] = static_cast<uint8_t>(h);
    bytes[i + 1] = static_cast<uint8_t>(h >> 8);
  }
  // Prepared exactly as a shard prepares its weights, so the kernel timed is the one the
  // forward pass runs (a repacked layout can be several times faster than GGUF's).
  absl::StatusOr<PreparedMatrix> cached =
      Prepare(WeightMatrix{type, cached_rows, cols, bytes.data()});
  if (!cached.ok()) return c;
  c.gflops = 2.0 * cached_rows * cols / SecondsPerProduct(*cached, cached_rows, cols, pool) / 1e9;
  *cached = PreparedMatrix();
  // The rate the kernel streams weights at is what a token costs per byte (a plain read
  // probe is faster than the kernel achieves, and noisier); the probe stays as a fallback.
  absl::StatusOr<PreparedMatrix> streamed =
      Prepare(WeightMatrix{type, stream_rows, cols, bytes.data()});
  if (!streamed.ok()) return c;
  bytes = std::vector<uint8_t>();
  const double kernel_gbs = static_cast<double>(stream_rows * row_bytes) /
                            SecondsPerProduct(*streamed, stream_rows, cols, pool) / 1e9;
  c.bandwidth_gbs = kernel_gbs;
  return c;
}

uint64_t AvailableMemoryBytes() {
  std::ifstream in("/proc/meminfo");
  std::string key, unit;
  uint64_t value;
  while (in >> key >> value >> unit) {
    if (key == "MemAvailable:") return value * 1024;
  }
  return 0;
}

}  // namespace tandem
