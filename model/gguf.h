// GGUF v2/v3 reader: memory-maps the file, validates the header, metadata and tensor
// table before anything is allocated from file-supplied sizes, and hands out tensors by
// name with a shape check.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "model/ggml_type.h"
#include "model/mapped_file.h"

namespace tandem {

enum class GgufValueType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};

absl::string_view GgufValueTypeName(GgufValueType type);
bool IsIntegerType(GgufValueType type);

// One metadata value. Scalars and arrays of scalars or strings; GGUF's nested arrays are
// rejected at load (no model uses them).
class GgufValue {
 public:
  // Builders (for the writer and tests).
  static GgufValue Int(GgufValueType type, int64_t v);
  static GgufValue Float32(float v);
  static GgufValue Bool(bool v);
  static GgufValue String(std::string v);
  static GgufValue StringArray(std::vector<std::string> v);
  static GgufValue IntArray(GgufValueType elem_type, std::vector<int64_t> v);
  static GgufValue Float32Array(std::vector<float> v);

  GgufValueType type() const { return type_; }
  GgufValueType array_type() const { return array_type_; }
  size_t array_size() const;

  // Scalar accessors fail with a message naming `key` when the type does not fit.
  absl::StatusOr<int64_t> AsInt(absl::string_view key) const;   // any integer type
  absl::StatusOr<double> AsFloat(absl::string_view key) const;  // float32/64 or integer
  absl::StatusOr<bool> AsBool(absl::string_view key) const;
  absl::StatusOr<std::string> AsString(absl::string_view key) const;
  // Array accessors.
  absl::StatusOr<std::vector<std::string>> AsStringArray(absl::string_view key) const;
  absl::StatusOr<std::vector<int64_t>> AsIntArray(absl::string_view key) const;
  absl::StatusOr<std::vector<float>> AsFloatArray(absl::string_view key) const;

  // Human-readable short form for `tandem info`.
  std::string DebugString(size_t max_elements = 8) const;

 private:
  friend class GgufParser;
  friend class GgufWriter;
  GgufValueType type_ = GgufValueType::kUint8;
  GgufValueType array_type_ = GgufValueType::kUint8;
  // Scalars and array elements: integers (incl. bool) in ints_, floats in floats_,
  // strings in strings_. uint64 values above INT64_MAX keep their bit pattern.
  std::vector<int64_t> ints_;
  std::vector<double> floats_;
  std::vector<std::string> strings_;
};

struct GgufTensor {
  std::string name;
  std::vector<int64_t> dims;  // ggml order: dims[0] is the row length
  GgmlType type = GgmlType::kF32;
  uint64_t offset = 0;  // from the start of the data section
  uint64_t size_bytes = 0;
  const uint8_t* data = nullptr;  // inside the mapping

  int64_t n_elements() const;
  int64_t row_length() const { return dims.empty() ? 1 : dims[0]; }
  int64_t n_rows() const;  // product of dims[1..]
  std::string ShapeString() const;
};

class GgufFile {
 public:
  static absl::StatusOr<std::unique_ptr<GgufFile>> Open(const std::string& path);
  // Parses GGUF bytes held in memory (fuzzing, tests) with the same checks.
  static absl::StatusOr<std::unique_ptr<GgufFile>> FromBytes(std::string name,
                                                             std::vector<uint8_t> bytes);
  // A model known by its header alone (magic, metadata, tensor table: the file's first
  // data_offset() bytes) and the size of the whole file, which the tensor table is checked
  // against. Its tensors hold no data until AttachTensor gives them some: a node that
  // fetches only its own layers maps each fetched tensor from its own file.
  static absl::StatusOr<std::unique_ptr<GgufFile>> FromHeader(std::string name,
                                                              std::vector<uint8_t> header,
                                                              uint64_t file_size);
  // Backs tensor `index` of a FromHeader file with `blob`, which must hold exactly the
  // tensor's bytes (the caller checked their digest).
  absl::Status AttachTensor(size_t index, std::shared_ptr<const MappedFile> blob);

  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;

  const std::string& path() const { return mapping_->path(); }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }
  const MappedFile& mapping() const { return *mapping_; }

  // Metadata in file order.
  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return metadata_; }
  const GgufValue* Find(absl::string_view key) const;
  bool Has(absl::string_view key) const { return Find(key) != nullptr; }
  absl::StatusOr<std::string> GetString(absl::string_view key) const;
  absl::StatusOr<int64_t> GetInt(absl::string_view key) const;
  absl::StatusOr<double> GetFloat(absl::string_view key) const;
  // Optional forms: the default when the key is absent, an error when present but wrong.
  absl::StatusOr<int64_t> GetInt(absl::string_view key, int64_t fallback) const;
  absl::StatusOr<double> GetFloat(absl::string_view key, double fallback) const;
  absl::StatusOr<bool> GetBool(absl::string_view key, bool fallback) const;

  const std::vector<GgufTensor>& tensors() const { return tensors_; }
  const GgufTensor* FindTensor(absl::string_view name) const;
  // The tensor `name` with exactly `dims` (ggml order); a missing or misshapen tensor, or
  // one whose data this file does not hold (FromHeader), is an error naming it.
  absl::StatusOr<const GgufTensor*> GetTensor(absl::string_view name,
                                              const std::vector<int64_t>& dims) const;
  // Tells the kernel a tensor's bytes will be read soon, or may be dropped from memory.
  void WillNeed(const GgufTensor& tensor) const;
  void DontNeed(const GgufTensor& tensor) const;

 private:
  friend class GgufParser;
  explicit GgufFile(std::unique_ptr<MappedFile> mapping) : mapping_(std::move(mapping)) {}
  // `declared_size` (FromHeader): the whole file's size, when the mapping holds only its
  // header; 0: the mapping is the whole file.
  static absl::StatusOr<std::unique_ptr<GgufFile>> Parse(std::unique_ptr<MappedFile> mapping,
                                                         uint64_t declared_size = 0);
  // The mapping that holds a tensor's bytes.
  const MappedFile& MappingOf(const GgufTensor& tensor) const;

  std::unique_ptr<MappedFile> mapping_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, GgufValue>> metadata_;
  absl::flat_hash_map<std::string, size_t> metadata_index_;
  std::vector<GgufTensor> tensors_;
  absl::flat_hash_map<std::string, size_t> tensor_index_;
  // FromHeader: per tensor, the file its bytes were attached from (null: none).
  std::vector<std::shared_ptr<const MappedFile>> tensor_blobs_;
};

}  // namespace tandem
