// A weight matrix made ready for fast products once, at load time: either a view of the
// memory-mapped GGUF bytes, or a copy in 2 MiB transparent huge pages (fewer TLB misses
// while streaming, the difference between ~16 and ~21+ GB/s on the reference machine).
#pragma once

#include <cstddef>
#include <cstdint>

#include "absl/status/statusor.h"
#include "node/kernels/matmul.h"
#include "node/kernels/thread_pool.h"

namespace tandem {

struct PrepareOptions {
  // Copy the weights into an owned, huge-page-backed buffer. Off: keep a view of the
  // caller's bytes (which must then outlive the PreparedMatrix).
  bool repack = true;
  // When repacking, also reorder rows into the fastest kernel's own layout if it has one.
  bool kernel_layout = true;
};

// Movable, non-copyable. A repacked matrix may hold its rows in a kernel-specific layout
// (Q4_0, Q8_0, Q4_K and Q6_K on AVX-512 CPUs: rows interleaved 16 at a time): use MatMul /
// DequantizeRow below, not the bytes.
class PreparedMatrix {
 public:
  PreparedMatrix() = default;
  ~PreparedMatrix();
  PreparedMatrix(PreparedMatrix&& other) noexcept;
  PreparedMatrix& operator=(PreparedMatrix&& other) noexcept;
  PreparedMatrix(const PreparedMatrix&) = delete;
  PreparedMatrix& operator=(const PreparedMatrix&) = delete;

  // The matrix with data in this object's row layout (GGUF layout unless repacked_layout()).
  const WeightMatrix& view() const { return view_; }
  // Whether rows are in a kernel-specific layout rather than GGUF's.
  bool repacked_layout() const { return layout_ != 0; }
  GgmlType type() const { return view_.type; }
  int64_t rows() const { return view_.rows; }
  int64_t cols() const { return view_.cols; }
  // Whether the bytes live in an owned buffer (as opposed to the caller's memory).
  bool owned() const { return owned_bytes_ != 0; }
  // Bytes owned (rounded up to whole huge pages), 0 for a view.
  size_t owned_bytes() const { return owned_bytes_; }

 private:
  friend absl::StatusOr<PreparedMatrix> Prepare(const WeightMatrix& w,
                                                const PrepareOptions& options);
  friend void MatMul(const PreparedMatrix& w, const float* x, int64_t n_batch, float* y,
                     ThreadPool& pool);
  friend void DequantizeRow(const PreparedMatrix& w, int64_t row, float* out);
  void Release();

  WeightMatrix view_;
  int layout_ = 0;  // kernels::RowLayout
  void* buffer_ = nullptr;
  size_t owned_bytes_ = 0;
};

// Checks the matrix (supported type, shape, cols a multiple of the block size, data
// present) and prepares it. Errors name the problem.
absl::StatusOr<PreparedMatrix> Prepare(const WeightMatrix& w, const PrepareOptions& options = {});

// The products of matmul.h on a prepared matrix (same contract).
void MatMul(const PreparedMatrix& w, const float* x, int64_t n_batch, float* y, ThreadPool& pool);
void DequantizeRow(const PreparedMatrix& w, int64_t row, float* out);

}  // namespace tandem
