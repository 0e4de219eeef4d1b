// Measures what the memory system delivers, the ceiling of one-token products.
#pragma once

#include <cstddef>

#include "node/kernels/thread_pool.h"

namespace tandem {

// Streaming read bandwidth in GB/s (1e9 bytes/s) of all pool threads reading disjoint parts
// of a `bytes` buffer in huge pages; the median of several passes after a warm-up pass.
double MeasureReadBandwidthGBs(ThreadPool& pool, size_t bytes);

}  // namespace tandem
