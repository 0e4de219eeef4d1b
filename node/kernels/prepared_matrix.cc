#include "node/kernels/prepared_matrix.h"

#include <sys/mman.h>

#include <cstring>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "node/kernels/quants.h"
#include "node/kernels/vec_dot.h"

namespace tandem {
namespace {

constexpr size_t kHugePage = size_t{2} << 20;

}  // namespace

PreparedMatrix::~PreparedMatrix() { Release(); }

PreparedMatrix::PreparedMatrix(PreparedMatrix&& other) noexcept
    : view_(other.view_),
      layout_(other.layout_),
      buffer_(other.buffer_),
      owned_bytes_(other.owned_bytes_) {
  other.buffer_ = nullptr;
  other.owned_bytes_ = 0;
  other.view_ = WeightMatrix{};
}

PreparedMatrix& PreparedMatrix::operator=(PreparedMatrix&& other) noexcept {
  if (this != &other) {
    Release();
    view_ = std::exchange(other.view_, WeightMatrix{});
    layout_ = std::exchange(other.layout_, 0);
    buffer_ = std::exchange(other.buffer_, nullptr);
    owned_bytes_ = std::exchange(other.owned_bytes_, 0);
  }
  return *this;
}

void PreparedMatrix::Release() {
  if (buffer_ != nullptr) munmap(buffer_, owned_bytes_);
  buffer_ = nullptr;
  owned_bytes_ = 0;
}

absl::StatusOr<PreparedMatrix> Prepare(const WeightMatrix& w, const PrepareOptions& options) {
  if (!IsSupportedWeightType(w.type)) {
    return absl::InvalidArgumentError(
        absl::StrCat("weight type ", GgmlTypeName(w.type), " is not supported by the kernels"));
  }
  if (w.rows <= 0 || w.cols <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad weight shape (", w.rows, ", ", w.cols, ")"));
  }
  const int64_t row_bytes = RowBytes(w.type, w.cols);
  if (row_bytes <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("cols ", w.cols, " is not a multiple of the ",
                                                   GgmlTypeName(w.type), " block size"));
  }
  // /4: room for the interleaved layouts' padding and unpacked K scales.
  if (w.rows > static_cast<int64_t>(SIZE_MAX / 4) / row_bytes) {
    return absl::InvalidArgumentError("weight matrix too large");
  }
  if (w.data == nullptr) return absl::InvalidArgumentError("weight matrix has no data");
  PreparedMatrix p;
  p.view_ = w;
  if (!options.repack) return p;

  // Q4_0 / Q8_0 / Q4_K / Q6_K: the interleaved 16-row layout, one kernel for every batch; a last
  // partial group is padded with zero rows (scale 0).
  const bool interleave = kernels::Interleaved16Supports(w.type) &&
                          BestKernelIsa() == KernelIsa::kAvx512 && options.kernel_layout;
  const int64_t group_bytes = interleave ? kernels::Interleaved16GroupBytes(w.type, w.cols) : 0;
  const size_t bytes =
      static_cast<size_t>(interleave ? (w.rows + 15) / 16 * group_bytes : w.rows * row_bytes);
  const size_t rounded = (bytes + kHugePage - 1) / kHugePage * kHugePage;
  // Over-allocate by one huge page so the buffer can start on a 2 MiB boundary.
  const size_t mapped = rounded + kHugePage;
  void* raw = mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) {
    return absl::ResourceExhaustedError(
        absl::StrCat("cannot allocate ", mapped, " bytes for repacked weights"));
  }
  const uintptr_t start = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t aligned = (start + kHugePage - 1) / kHugePage * kHugePage;
  if (aligned > start) munmap(raw, aligned - start);
  const uintptr_t end = start + mapped;
  if (end > aligned + rounded)
    munmap(reinterpret_cast<void*>(aligned + rounded), end - aligned - rounded);
  void* buffer = reinterpret_cast<void*>(aligned);
  madvise(buffer, rounded, MADV_HUGEPAGE);  // advisory: fine if THP is off
  if (interleave) {
    for (int64_t r = 0; r < w.rows; r += 16) {
      uint8_t* group = static_cast<uint8_t*>(buffer) + r / 16 * group_bytes;
      if (r + 16 <= w.rows) {
        kernels::InterleaveRows16(w.type, w.data + r * row_bytes, w.cols, group);
      } else {
        std::vector<uint8_t> padded(static_cast<size_t>(16 * row_bytes), 0);
        std::memcpy(padded.data(), w.data + r * row_bytes,
                    static_cast<size_t>((w.rows - r) * row_bytes));
        kernels::InterleaveRows16(w.type, padded.data(), w.cols, group);
      }
    }
    p.layout_ = static_cast<int>(kernels::RowLayout::kInterleaved16);
  } else {
    std::memcpy(buffer, w.data, bytes);
  }
  p.buffer_ = buffer;
  p.owned_bytes_ = rounded;
  p.view_.data = static_cast<const uint8_t*>(buffer);
  return p;
}

void MatMul(const PreparedMatrix& w, const float* x, int64_t n_batch, float* y, ThreadPool& pool) {
  kernels::MatMulLayout({w.view(), static_cast<kernels::RowLayout>(w.layout_)}, x, n_batch, y, pool,
                        BestKernelIsa());
}

void DequantizeRow(const PreparedMatrix& w, int64_t row, float* out) {
  kernels::DequantizeRowLayout({w.view(), static_cast<kernels::RowLayout>(w.layout_)}, row, out);
}

}  // namespace tandem
