#include "node/kernels/matmul.h"

#include <cblas.h>

#include <algorithm>
#include <cassert>
#include <vector>

#include "node/kernels/fp16.h"

namespace tandem {

bool MatMulSupports(GgmlType type) { return type == GgmlType::kF32 || type == GgmlType::kF16; }

void DequantizeRow(const WeightMatrix& w, int64_t row, float* out) {
  const int64_t row_bytes = RowBytes(w.type, w.cols);
  const uint8_t* p = w.data + row * row_bytes;
  switch (w.type) {
    case GgmlType::kF32:
      std::copy_n(reinterpret_cast<const float*>(p), w.cols, out);
      break;
    case GgmlType::kF16: {
      const uint16_t* h = reinterpret_cast<const uint16_t*>(p);
      for (int64_t i = 0; i < w.cols; ++i) out[i] = Fp16ToFp32(h[i]);
      break;
    }
    default:
      assert(false && "unsupported weight type");
  }
}

void MatMul(const WeightMatrix& w, const float* x, int64_t n_batch, float* y, ThreadPool& pool) {
  if (w.type == GgmlType::kF32 && n_batch > 1) {
    // y (n_batch, rows) = x (n_batch, cols) * W^T
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(n_batch),
                static_cast<int>(w.rows), static_cast<int>(w.cols), 1.0f, x,
                static_cast<int>(w.cols), reinterpret_cast<const float*>(w.data),
                static_cast<int>(w.cols), 0.0f, y, static_cast<int>(w.rows));
    return;
  }
  pool.ParallelFor(w.rows, 16, [&](int64_t r0, int64_t r1) {
    std::vector<float> row(w.cols);
    for (int64_t r = r0; r < r1; ++r) {
      DequantizeRow(w, r, row.data());
      for (int64_t b = 0; b < n_batch; ++b) {
        const float* xb = x + b * w.cols;
        float sum = 0;
        for (int64_t c = 0; c < w.cols; ++c) sum += row[c] * xb[c];
        y[b * w.rows + r] = sum;
      }
    }
  });
}

}  // namespace tandem
