#include "node/calibration.h"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "node/kernels/bandwidth.h"
#include "node/kernels/fp16.h"
#include "node/kernels/matmul.h"

namespace tandem {

Calibration Calibrate(GgmlType type, int64_t rows, int64_t cols, ThreadPool& pool) {
  Calibration c;
  c.bandwidth_gbs = MeasureReadBandwidthGBs(pool, 64u << 20);
  const int64_t row_bytes = RowBytes(type, cols);
  if (row_bytes <= 0 || !MatMulSupports(type)) return c;
  rows = std::max<int64_t>(1, std::min<int64_t>(rows, (32 << 20) / row_bytes));
  // Bytes that decode to small finite values in every format: f16/bf16 0x3c00-ish
  // patterns, and block scales that are ordinary halves.
  std::vector<uint8_t> bytes(static_cast<size_t>(rows * row_bytes));
  std::mt19937 rng(1);
  for (size_t i = 0; i + 1 < bytes.size(); i += 2) {
    uint16_t h = Fp32ToFp16(std::uniform_real_distribution<float>(-0.01f, 0.01f)(rng));
    bytes[i] = static_cast<uint8_t>(h);
    bytes[i + 1] = static_cast<uint8_t>(h >> 8);
  }
  WeightMatrix w{type, rows, cols, bytes.data()};
  std::vector<float> x(static_cast<size_t>(cols), 0.5f), y(static_cast<size_t>(rows));
  MatMul(w, x.data(), 1, y.data(), pool);  // warm up
  const auto t0 = std::chrono::steady_clock::now();
  double seconds = 0;
  int reps = 0;
  while (seconds < 0.1 && reps < 10000) {
    MatMul(w, x.data(), 1, y.data(), pool);
    ++reps;
    seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  c.gflops = 2.0 * rows * cols * reps / seconds / 1e9;
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
