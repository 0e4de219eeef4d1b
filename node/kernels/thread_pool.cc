#include "node/kernels/thread_pool.h"

#include <immintrin.h>

#include <algorithm>
#include <chrono>

namespace tandem {
namespace {

constexpr auto kSpinTime = std::chrono::microseconds(25);

// Spins until `value` differs from `old` or kSpinTime passes, then sleeps on it. Returns the
// new value.
template <typename T>
T WaitForChange(const std::atomic<T>& value, T old) {
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0;; ++i) {
    const T v = value.load(std::memory_order_acquire);
    if (v != old) return v;
    _mm_pause();
    if ((i & 255) == 255 && std::chrono::steady_clock::now() - start > kSpinTime) break;
  }
  for (;;) {
    value.wait(old, std::memory_order_acquire);
    const T v = value.load(std::memory_order_acquire);
    if (v != old) return v;
  }
}

}  // namespace

ThreadPool::ThreadPool(int n_threads) : n_threads_(std::max(1, n_threads)) {
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { WorkerLoop(i); });
}

ThreadPool::~ThreadPool() {
  stop_ = true;
  generation_.fetch_add(1, std::memory_order_release);
  generation_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::Work(uint32_t generation, const std::function<void(int, int)>& job) {
  uint64_t c = claim_.load(std::memory_order_acquire);
  for (;;) {
    if (static_cast<uint32_t>(c >> 32) != generation ||
        static_cast<int>(c & 0xffffffffu) >= n_threads_) {
      return;
    }
    if (!claim_.compare_exchange_weak(c, c + 1, std::memory_order_acq_rel)) continue;
    job(static_cast<int>(c & 0xffffffffu), n_threads_);
    if (done_.fetch_add(1, std::memory_order_acq_rel) + 1 == n_threads_) done_.notify_one();
    c = claim_.load(std::memory_order_acquire);
  }
}

void ThreadPool::WorkerLoop(int) {
  uint32_t seen = 0;
  for (;;) {
    seen = WaitForChange(generation_, seen);
    if (stop_) return;
    const auto* job = job_.load(std::memory_order_acquire);
    if (job) Work(seen, *job);
  }
}

void ThreadPool::Run(const std::function<void(int, int)>& fn) {
  if (n_threads_ == 1) {
    fn(0, 1);
    return;
  }
  const uint32_t generation = generation_.load(std::memory_order_relaxed) + 1;
  done_.store(0, std::memory_order_relaxed);
  job_.store(&fn, std::memory_order_relaxed);
  claim_.store(static_cast<uint64_t>(generation) << 32, std::memory_order_relaxed);
  generation_.store(generation, std::memory_order_release);
  generation_.notify_all();
  Work(generation, fn);
  for (int done = done_.load(std::memory_order_acquire); done != n_threads_;
       done = done_.load(std::memory_order_acquire)) {
    WaitForChange(done_, done);
  }
}

void ThreadPool::ParallelFor(int64_t n, int64_t grain,
                             const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  int64_t n_grains = (n + grain - 1) / grain;
  int threads = static_cast<int>(std::min<int64_t>(n_threads_, n_grains));
  if (threads <= 1) {
    fn(0, n);
    return;
  }
  Run([&](int index, int) {
    if (index >= threads) return;
    int64_t g0 = n_grains * index / threads;
    int64_t g1 = n_grains * (index + 1) / threads;
    int64_t begin = g0 * grain;
    int64_t end = std::min(n, g1 * grain);
    if (begin < end) fn(begin, end);
  });
}

}  // namespace tandem
