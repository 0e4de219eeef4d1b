// Writes GGUF v3 files: metadata in the order added, then the tensor table, then the
// aligned tensor data. Used by `tandem make-model` and by tests.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "model/gguf.h"

namespace tandem {

class GgufWriter {
 public:
  void AddMetadata(std::string key, GgufValue value);
  // `data` holds the tensor's bytes in `type`'s layout; dims in ggml order.
  void AddTensor(std::string name, std::vector<int64_t> dims, GgmlType type,
                 std::vector<uint8_t> data);

  // Serialises everything into bytes (tests) or a file.
  std::vector<uint8_t> Serialize() const;
  absl::Status WriteFile(const std::string& path) const;

  static constexpr uint64_t kAlignment = 32;

 private:
  struct Tensor {
    std::string name;
    std::vector<int64_t> dims;
    GgmlType type;
    std::vector<uint8_t> data;
  };
  std::vector<std::pair<std::string, GgufValue>> metadata_;
  std::vector<Tensor> tensors_;
};

}  // namespace tandem
