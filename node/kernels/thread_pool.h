// A persistent pool of worker threads that splits index ranges; no thread is created per
// call. The calling thread takes part in the work. Workers spin briefly (25 us) after a
// job before sleeping on a futex: the products of one layer follow each other within
// that, and a sleep/wake round trip costs about as much. Longer spins (100 us was tried)
// steal the cores from the next pipeline stage when several nodes share a machine.
//
// The parts of a job are claimed, not assigned: whichever thread is running takes the
// next unclaimed part. When the machine is oversubscribed (several node processes on
// two cores) a descheduled worker then costs nothing: the caller does its part instead
// of waiting a whole scheduler time slice for it.
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

  // Runs fn(part, n_threads) once for every part in [0, n_threads), on whichever threads
  // claim them (the caller included), and returns when all are done. A part runs on one
  // thread at a time, so per-part scratch indexed by `part` is safe.
  void Run(const std::function<void(int, int)>& fn);

  // Splits [0, n) into contiguous chunks, at most one per thread, each a multiple of
  // `grain` (but the last), and runs fn(begin, end) on them.
  void ParallelFor(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

 private:
  void WorkerLoop(int index);

  int n_threads_;
  std::vector<std::thread> workers_;
  // Runs claimed parts of the job of `generation` until none is left.
  void Work(uint32_t generation, const std::function<void(int, int)>& job);

  // Written before generation_ is bumped (release), read after it is seen (acquire).
  std::atomic<const std::function<void(int, int)>*> job_{nullptr};
  std::atomic<bool> stop_{false};
  std::atomic<uint32_t> generation_{0};
  // (generation << 32) | next unclaimed part: a late worker cannot claim a newer job's part
  // with an older job.
  std::atomic<uint64_t> claim_{0};
  std::atomic<int> done_{0};
};

}  // namespace tandem
