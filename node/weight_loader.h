// Reading one shard's weights out of a mapped GGUF file, by name with a shape check. Norms
// and biases are copied out; matrices are prepared for the kernels (node/kernels/
// prepared_matrix.h). The architectures (node/arch/) say which names to read.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/gguf.h"
#include "node/kernels/prepared_matrix.h"

namespace tandem {

struct ShardOptions {
  bool repack = true;  // false: multiply straight from the mapped file
  // Told after each layer is checked and prepared (progress while a shard loads).
  std::function<void(int layers_done, int layers_total)> on_layer;
};

class WeightLoader {
 public:
  // Counts the bytes read into *weight_bytes; copied vectors live in *vectors, which the
  // shard owns (its inner buffers never move).
  WeightLoader(const GgufFile& file, ShardOptions options, uint64_t* weight_bytes,
               std::vector<std::vector<float>>* vectors)
      : file_(file), options_(options), bytes_(weight_bytes), vectors_(vectors) {}

  bool Has(const std::string& name) const { return file_.FindTensor(name) != nullptr; }

  // An f32 vector of n values (norm weights, biases).
  absl::StatusOr<const float*> Vector(const std::string& name, int64_t n);

  // A (rows, cols) matrix: ggml shape [cols, rows].
  absl::StatusOr<PreparedMatrix> Matrix(const std::string& name, int64_t rows, int64_t cols);

  // A tensor that stacks several matrices of `cols` columns along its rows (Phi-3's fused
  // qkv and gate/up): one matrix per entry of `rows`, in order. Each output row is the
  // same dot product as in the fused product, so the results are the same.
  absl::StatusOr<std::vector<PreparedMatrix>> SplitRows(const std::string& name,
                                                        const std::vector<int64_t>& rows,
                                                        int64_t cols);

 private:
  const GgufFile& file_;
  ShardOptions options_;
  uint64_t* bytes_;
  std::vector<std::vector<float>>* vectors_;
};

}  // namespace tandem
