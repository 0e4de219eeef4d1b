// What a node measures about itself at registration, in well under a second: memory
// read bandwidth and the speed of one-token products on the model's weight type.
#pragma once

#include <cstdint>

#include "model/ggml_type.h"
#include "node/kernels/thread_pool.h"

namespace tandem {

struct Calibration {
  double bandwidth_gbs = 0;
  double gflops = 0;
};

// Times products with a synthetic (rows x cols) matrix of `type` (at most 32 MiB), so the
// model file's pages are not touched before the node knows its layers.
Calibration Calibrate(GgmlType type, int64_t rows, int64_t cols, ThreadPool& pool);

// Usable memory: MemAvailable from /proc/meminfo (0 when unknown).
uint64_t AvailableMemoryBytes();

}  // namespace tandem
