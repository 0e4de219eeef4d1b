// A persistent pool of worker threads that splits index ranges; no thread is created per
// call. The calling thread takes part in the work. Workers spin briefly (~100 us) after a
// job before sleeping on a futex, since one-token products come every 10-100 us and a
// sleep/wake round trip costs about as much.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

namespace tandem {

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Runs fn(thread_index, n_threads) on every thread (the caller is index 0) and returns
  // when all are done.
  void Run(const std::function<void(int, int)>& fn);

  // Splits [0, n) into contiguous chunks, at most one per thread, each a multiple of
  // `grain` (but the last), and runs fn(begin, end) on them.
  void ParallelFor(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

 private:
  void WorkerLoop(int index);

  int n_threads_;
  std::vector<std::thread> workers_;
  // Written before generation_ is bumped (release), read after it is seen (acquire).
  const std::function<void(int, int)>* job_ = nullptr;
  bool stop_ = false;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
};

}  // namespace tandem
