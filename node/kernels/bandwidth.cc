#include "node/kernels/bandwidth.h"

#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <vector>

namespace tandem {
namespace {

__attribute__((target_clones("arch=x86-64-v4", "avx2", "default"))) uint64_t XorWords(
    const uint64_t* p, size_t n) {
  uint64_t acc[8] = {};
  for (size_t i = 0; i + 8 <= n; i += 8) {
    for (int l = 0; l < 8; ++l) acc[l] ^= p[i + l];
  }
  uint64_t x = 0;
  for (int l = 0; l < 8; ++l) x ^= acc[l];
  return x;
}

}  // namespace

double MeasureReadBandwidthGBs(ThreadPool& pool, size_t bytes) {
  bytes = std::max<size_t>(bytes, size_t{1} << 20) / 4096 * 4096;
  void* buffer = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (buffer == MAP_FAILED) return 0;
  madvise(buffer, bytes, MADV_HUGEPAGE);
  std::memset(buffer, 1, bytes);  // fault every page in before timing
  const uint64_t* words = static_cast<const uint64_t*>(buffer);
  const size_t n_words = bytes / 8;
  std::atomic<uint64_t> sink{0};
  std::vector<double> rates;
  for (int pass = 0; pass < 6; ++pass) {
    const auto start = std::chrono::steady_clock::now();
    pool.Run([&](int index, int n_threads) {
      const size_t begin = n_words * index / n_threads / 8 * 8;
      const size_t end = n_words * (index + 1) / n_threads / 8 * 8;
      sink.fetch_xor(XorWords(words + begin, end - begin), std::memory_order_relaxed);
    });
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (pass > 0) rates.push_back(static_cast<double>(bytes) / seconds / 1e9);  // pass 0 warms
  }
  munmap(buffer, bytes);
  std::sort(rates.begin(), rates.end());
  return rates[rates.size() / 2];
}

}  // namespace tandem
