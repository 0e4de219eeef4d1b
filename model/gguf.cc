#include "model/gguf.h"

#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "base/status_macros.h"

namespace tandem {
namespace {

constexpr uint32_t kGgufMagic = 0x46554747;  // "GGUF" little-endian
// Sanity bounds: far above any real model, low enough that a corrupt count cannot make
// us reserve absurd amounts of memory before the bytes run out.
constexpr uint64_t kMaxTensors = 1 << 20;
constexpr uint64_t kMaxMetadata = 1 << 20;
constexpr uint64_t kMaxStringLength = 1 << 26;
constexpr uint32_t kMaxDims = 4;

size_t ScalarSize(GgufValueType t) {
  switch (t) {
    case GgufValueType::kUint8:
    case GgufValueType::kInt8:
    case GgufValueType::kBool:
      return 1;
    case GgufValueType::kUint16:
    case GgufValueType::kInt16:
      return 2;
    case GgufValueType::kUint32:
    case GgufValueType::kInt32:
    case GgufValueType::kFloat32:
      return 4;
    case GgufValueType::kUint64:
    case GgufValueType::kInt64:
    case GgufValueType::kFloat64:
      return 8;
    default:
      return 0;
  }
}

bool MulOverflows(uint64_t a, uint64_t b, uint64_t* out) {
  return __builtin_mul_overflow(a, b, out);
}

}  // namespace

absl::string_view GgufValueTypeName(GgufValueType type) {
  switch (type) {
    case GgufValueType::kUint8:
      return "uint8";
    case GgufValueType::kInt8:
      return "int8";
    case GgufValueType::kUint16:
      return "uint16";
    case GgufValueType::kInt16:
      return "int16";
    case GgufValueType::kUint32:
      return "uint32";
    case GgufValueType::kInt32:
      return "int32";
    case GgufValueType::kFloat32:
      return "float32";
    case GgufValueType::kBool:
      return "bool";
    case GgufValueType::kString:
      return "string";
    case GgufValueType::kArray:
      return "array";
    case GgufValueType::kUint64:
      return "uint64";
    case GgufValueType::kInt64:
      return "int64";
    case GgufValueType::kFloat64:
      return "float64";
  }
  return "unknown";
}

bool IsIntegerType(GgufValueType t) {
  switch (t) {
    case GgufValueType::kUint8:
    case GgufValueType::kInt8:
    case GgufValueType::kUint16:
    case GgufValueType::kInt16:
    case GgufValueType::kUint32:
    case GgufValueType::kInt32:
    case GgufValueType::kUint64:
    case GgufValueType::kInt64:
      return true;
    default:
      return false;
  }
}

// ---------------------------------------------------------------------------
// GgufValue

GgufValue GgufValue::Int(GgufValueType type, int64_t v) {
  GgufValue r;
  r.type_ = type;
  r.ints_ = {v};
  return r;
}
GgufValue GgufValue::Float32(float v) {
  GgufValue r;
  r.type_ = GgufValueType::kFloat32;
  r.floats_ = {v};
  return r;
}
GgufValue GgufValue::Bool(bool v) {
  GgufValue r;
  r.type_ = GgufValueType::kBool;
  r.ints_ = {v ? 1 : 0};
  return r;
}
GgufValue GgufValue::String(std::string v) {
  GgufValue r;
  r.type_ = GgufValueType::kString;
  r.strings_ = {std::move(v)};
  return r;
}
GgufValue GgufValue::StringArray(std::vector<std::string> v) {
  GgufValue r;
  r.type_ = GgufValueType::kArray;
  r.array_type_ = GgufValueType::kString;
  r.strings_ = std::move(v);
  return r;
}
GgufValue GgufValue::IntArray(GgufValueType elem_type, std::vector<int64_t> v) {
  GgufValue r;
  r.type_ = GgufValueType::kArray;
  r.array_type_ = elem_type;
  r.ints_ = std::move(v);
  return r;
}
GgufValue GgufValue::Float32Array(std::vector<float> v) {
  GgufValue r;
  r.type_ = GgufValueType::kArray;
  r.array_type_ = GgufValueType::kFloat32;
  r.floats_.assign(v.begin(), v.end());
  return r;
}

size_t GgufValue::array_size() const {
  if (type_ != GgufValueType::kArray) return 0;
  if (array_type_ == GgufValueType::kString) return strings_.size();
  if (array_type_ == GgufValueType::kFloat32 || array_type_ == GgufValueType::kFloat64) {
    return floats_.size();
  }
  return ints_.size();
}

namespace {
absl::Status TypeError(absl::string_view key, absl::string_view wanted, GgufValueType got) {
  return absl::InvalidArgumentError(
      absl::StrCat("metadata key '", key, "' is ", GgufValueTypeName(got), ", expected ", wanted));
}
}  // namespace

absl::StatusOr<int64_t> GgufValue::AsInt(absl::string_view key) const {
  if (!IsIntegerType(type_)) return TypeError(key, "an integer", type_);
  return ints_[0];
}

absl::StatusOr<double> GgufValue::AsFloat(absl::string_view key) const {
  if (type_ == GgufValueType::kFloat32 || type_ == GgufValueType::kFloat64) return floats_[0];
  if (IsIntegerType(type_)) return static_cast<double>(ints_[0]);
  return TypeError(key, "a number", type_);
}

absl::StatusOr<bool> GgufValue::AsBool(absl::string_view key) const {
  if (type_ != GgufValueType::kBool) return TypeError(key, "bool", type_);
  return ints_[0] != 0;
}

absl::StatusOr<std::string> GgufValue::AsString(absl::string_view key) const {
  if (type_ != GgufValueType::kString) return TypeError(key, "string", type_);
  return strings_[0];
}

absl::StatusOr<std::vector<std::string>> GgufValue::AsStringArray(absl::string_view key) const {
  if (type_ != GgufValueType::kArray || array_type_ != GgufValueType::kString) {
    return absl::InvalidArgumentError(
        absl::StrCat("metadata key '", key, "' is not an array of strings"));
  }
  return strings_;
}

absl::StatusOr<std::vector<int64_t>> GgufValue::AsIntArray(absl::string_view key) const {
  if (type_ != GgufValueType::kArray ||
      !(IsIntegerType(array_type_) || array_type_ == GgufValueType::kBool)) {
    return absl::InvalidArgumentError(
        absl::StrCat("metadata key '", key, "' is not an array of integers"));
  }
  return ints_;
}

absl::StatusOr<std::vector<float>> GgufValue::AsFloatArray(absl::string_view key) const {
  if (type_ != GgufValueType::kArray) {
    return absl::InvalidArgumentError(absl::StrCat("metadata key '", key, "' is not an array"));
  }
  std::vector<float> out;
  if (array_type_ == GgufValueType::kFloat32 || array_type_ == GgufValueType::kFloat64) {
    out.assign(floats_.begin(), floats_.end());
  } else if (IsIntegerType(array_type_)) {
    out.assign(ints_.begin(), ints_.end());
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("metadata key '", key, "' is not an array of numbers"));
  }
  return out;
}

std::string GgufValue::DebugString(size_t max_elements) const {
  auto scalar = [&](GgufValueType t, size_t i) -> std::string {
    if (t == GgufValueType::kString) return absl::StrCat("\"", strings_[i], "\"");
    if (t == GgufValueType::kFloat32 || t == GgufValueType::kFloat64) {
      return absl::StrFormat("%g", floats_[i]);
    }
    if (t == GgufValueType::kBool) return ints_[i] ? "true" : "false";
    if (t == GgufValueType::kUint64) return absl::StrCat(static_cast<uint64_t>(ints_[i]));
    return absl::StrCat(ints_[i]);
  };
  if (type_ != GgufValueType::kArray) return scalar(type_, 0);
  size_t n = array_size();
  std::string out = absl::StrCat("[", GgufValueTypeName(array_type_), " x ", n, "] [");
  for (size_t i = 0; i < n && i < max_elements; ++i) {
    if (i) out += ", ";
    out += scalar(array_type_, i);
  }
  if (n > max_elements) out += ", ...";
  return out + "]";
}

// ---------------------------------------------------------------------------
// GgufTensor

int64_t GgufTensor::n_elements() const {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

int64_t GgufTensor::n_rows() const {
  int64_t n = 1;
  for (size_t i = 1; i < dims.size(); ++i) n *= dims[i];
  return n;
}

std::string GgufTensor::ShapeString() const {
  return absl::StrCat("[", absl::StrJoin(dims, ", "), "]");
}

// ---------------------------------------------------------------------------
// Parser: a bounds-checked cursor over the mapping. Every read names what it was reading
// and where, so a corrupt file gets a message that points at the problem.

class GgufParser {
 public:
  GgufParser(GgufFile& file, uint64_t declared_size)
      : file_(file),
        data_(file.mapping_->data()),
        size_(file.mapping_->size()),
        declared_size_(declared_size) {}

  absl::Status Parse() {
    uint32_t magic;
    if (size_ < 4) return Error("file too short for the GGUF magic");
    TANDEM_RETURN_IF_ERROR(ReadU32(&magic, "magic"));
    if (magic != kGgufMagic) {
      return Error(absl::StrFormat("not a GGUF file (magic 0x%08x, expected 0x%08x \"GGUF\")",
                                   magic, kGgufMagic),
                   0);
    }
    TANDEM_RETURN_IF_ERROR(ReadU32(&file_.version_, "version"));
    if (file_.version_ != 2 && file_.version_ != 3) {
      return Error(absl::StrCat("unsupported GGUF version ", file_.version_, " (supported: 2, 3)"),
                   4);
    }
    uint64_t n_tensors, n_kv;
    TANDEM_RETURN_IF_ERROR(ReadU64(&n_tensors, "tensor count"));
    TANDEM_RETURN_IF_ERROR(ReadU64(&n_kv, "metadata count"));
    if (n_tensors > kMaxTensors) {
      return Error(absl::StrCat("tensor count ", n_tensors, " is absurd (limit ", kMaxTensors, ")"),
                   8);
    }
    if (n_kv > kMaxMetadata) {
      return Error(absl::StrCat("metadata count ", n_kv, " is absurd (limit ", kMaxMetadata, ")"),
                   16);
    }
    // Each metadata entry takes at least 8 (key length) + 4 (type) + 1 bytes; each tensor
    // info at least 8 + 4 + 4 + 8 bytes. Reject counts the file cannot possibly hold.
    if (n_kv * 13 > size_ - pos_ || n_tensors * 24 > size_ - pos_) {
      return Error(absl::StrCat("counts (", n_tensors, " tensors, ", n_kv,
                                " metadata entries) do not fit in the file's ", size_, " bytes"),
                   8);
    }

    for (uint64_t i = 0; i < n_kv; ++i) {
      size_t at = pos_;
      std::string key;
      TANDEM_RETURN_IF_ERROR(ReadString(&key, absl::StrCat("metadata key #", i)));
      if (file_.metadata_index_.contains(key)) {
        return Error(absl::StrCat("duplicate metadata key '", key, "'"), at);
      }
      GgufValue value;
      TANDEM_RETURN_IF_ERROR(ReadValue(&value, key));
      file_.metadata_index_[key] = file_.metadata_.size();
      file_.metadata_.emplace_back(std::move(key), std::move(value));
    }

    if (const GgufValue* align = file_.Find("general.alignment")) {
      if (align->type() != GgufValueType::kUint32) {
        return Error(absl::StrCat("general.alignment must be uint32, is ",
                                  GgufValueTypeName(align->type())));
      }
      uint64_t a = static_cast<uint64_t>(align->ints_[0]);
      if (a == 0 || (a & (a - 1)) != 0) {
        return Error(absl::StrCat("general.alignment ", a, " is not a power of two"));
      }
      file_.alignment_ = a;
    }

    file_.tensors_.reserve(n_tensors);
    for (uint64_t i = 0; i < n_tensors; ++i) {
      TANDEM_RETURN_IF_ERROR(ReadTensorInfo(i));
    }

    uint64_t data_offset = AlignUp(pos_, file_.alignment_);
    // A vocab-only file (no tensors) may end right after its metadata, unpadded.
    if (data_offset > size_ && file_.tensors_.empty()) data_offset = size_;
    if (data_offset > size_) {
      return Error(
          absl::StrCat("data section starts at ", data_offset, ", past the end of the file"));
    }
    file_.data_offset_ = data_offset;
    // A header alone: the tensor table is checked against the whole file's declared size,
    // and the header must end where the data section starts.
    const bool header_only = declared_size_ != 0;
    if (header_only && (data_offset != size_ || declared_size_ < size_)) {
      return Error(absl::StrCat("header of ", size_, " bytes does not end at the data section (",
                                data_offset, ") within the file's ", declared_size_, " bytes"));
    }
    const uint64_t data_size = (header_only ? declared_size_ : size_) - data_offset;
    for (auto& t : file_.tensors_) {
      if (t.offset % file_.alignment_ != 0) {
        return Error(absl::StrCat("tensor '", t.name, "' data offset ", t.offset,
                                  " is not a multiple of the alignment ", file_.alignment_));
      }
      if (t.offset > data_size || t.size_bytes > data_size - t.offset) {
        return Error(absl::StrCat("tensor '", t.name, "' (", t.size_bytes, " bytes at data offset ",
                                  t.offset, ") runs past the end of the file (data section is ",
                                  data_size, " bytes)"));
      }
      t.data = header_only ? nullptr : data_ + data_offset + t.offset;
    }
    return absl::OkStatus();
  }

 private:
  static uint64_t AlignUp(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

  absl::Status Error(absl::string_view what, size_t at) const {
    return absl::InvalidArgumentError(
        absl::StrCat(file_.path(), ": invalid GGUF: ", what, " (at byte ", at, ")"));
  }
  absl::Status Error(absl::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat(file_.path(), ": invalid GGUF: ", what));
  }

  absl::Status Need(size_t n, absl::string_view what) const {
    if (n > size_ - pos_) {
      return Error(absl::StrCat("file truncated while reading ", what, " (needs ", n, " bytes, ",
                                size_ - pos_, " left)"),
                   pos_);
    }
    return absl::OkStatus();
  }

  template <typename T>
  absl::Status ReadRaw(T* out, absl::string_view what) {
    TANDEM_RETURN_IF_ERROR(Need(sizeof(T), what));
    std::memcpy(out, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return absl::OkStatus();
  }
  absl::Status ReadU32(uint32_t* out, absl::string_view what) { return ReadRaw(out, what); }
  absl::Status ReadU64(uint64_t* out, absl::string_view what) { return ReadRaw(out, what); }

  absl::Status ReadString(std::string* out, absl::string_view what) {
    size_t at = pos_;
    uint64_t len;
    TANDEM_RETURN_IF_ERROR(ReadU64(&len, absl::StrCat(what, " length")));
    if (len > kMaxStringLength) {
      return Error(absl::StrCat(what, ": string length ", len, " is absurd"), at);
    }
    TANDEM_RETURN_IF_ERROR(Need(len, what));
    out->assign(reinterpret_cast<const char*>(data_ + pos_), len);
    pos_ += len;
    return absl::OkStatus();
  }

  absl::Status ReadScalar(GgufValueType t, GgufValue* v, absl::string_view what) {
    switch (t) {
      case GgufValueType::kUint8: {
        uint8_t x;
        TANDEM_RETURN_IF_ERROR(ReadRaw(&x, what));
        v->ints_.push_back(x);
        break;
      }
      case GgufValueType::kInt8: {
        int8_t x;
        TANDEM_RETURN_IF_ERROR(ReadRaw(&x, what));
        v->ints_.push_back(x);
        break;
      }
      case GgufValueType::kUint16: {
        uint16_t x;
        TANDEM_RETURN_IF_ERROR(ReadRaw(&x, what));
        v->ints_.push_back(x);
        break;
      }
      case GgufValueType::kInt16: {
        int16_t x;
        TANDEM_RETURN_IF_ERROR(ReadRaw(&x, what));
        v->ints_.push_back(x);
        break;
      }
      case GgufValueType::kUint32: {
        uint32_t x;
        TANDEM_RETURN_IF_ERROR(ReadRaw(&x, what));
        v->ints_.push_back(x);
        break;
      }
      case GgufValueType::kInt32: {
        int32_t x;
        TANDEM_RETURN_IF_ERROR(ReadRaw(&x, what));
        v->ints_.push_back(x);
        break;
      }
      case GgufValueType::kUint64: {
        uint64_t x;
        TANDEM_RETURN_IF_ERROR(ReadRaw(&x, what));
        v->ints_.push_back(static_cast<int64_t>(x));
        break;
      }
      case GgufValueType::kInt64: {
        int64_t x;
        TANDEM_RETURN_IF_ERROR(ReadRaw(&x, what));
        v->ints_.push_back(x);
        break;
      }
      case GgufValueType::kFloat32: {
        float x;
        TANDEM_RETURN_IF_ERROR(ReadRaw(&x, what));
        v->floats_.push_back(x);
        break;
      }
      case GgufValueType::kFloat64: {
        double x;
        TANDEM_RETURN_IF_ERROR(ReadRaw(&x, what));
        v->floats_.push_back(x);
        break;
      }
      case GgufValueType::kBool: {
        uint8_t x;
        size_t at = pos_;
        TANDEM_RETURN_IF_ERROR(ReadRaw(&x, what));
        if (x > 1)
          return Error(absl::StrCat(what, ": bool value ", int{x}, " is neither 0 nor 1"), at);
        v->ints_.push_back(x);
        break;
      }
      case GgufValueType::kString: {
        std::string s;
        TANDEM_RETURN_IF_ERROR(ReadString(&s, what));
        v->strings_.push_back(std::move(s));
        break;
      }
      default:
        return Error(absl::StrCat(what, ": unexpected value type ", static_cast<uint32_t>(t)),
                     pos_);
    }
    return absl::OkStatus();
  }

  absl::Status ReadValue(GgufValue* v, const std::string& key) {
    size_t at = pos_;
    uint32_t type;
    std::string what = absl::StrCat("value of metadata key '", key, "'");
    TANDEM_RETURN_IF_ERROR(ReadU32(&type, what));
    if (type > static_cast<uint32_t>(GgufValueType::kFloat64)) {
      return Error(absl::StrCat("metadata key '", key, "' has unknown value type ", type), at);
    }
    v->type_ = static_cast<GgufValueType>(type);
    if (v->type_ != GgufValueType::kArray) return ReadScalar(v->type_, v, what);

    uint32_t elem;
    uint64_t count;
    at = pos_;
    TANDEM_RETURN_IF_ERROR(ReadU32(&elem, what));
    if (elem > static_cast<uint32_t>(GgufValueType::kFloat64)) {
      return Error(absl::StrCat("metadata key '", key, "' is an array of unknown type ", elem), at);
    }
    if (elem == static_cast<uint32_t>(GgufValueType::kArray)) {
      return Error(absl::StrCat("metadata key '", key, "' is a nested array (not supported)"), at);
    }
    v->array_type_ = static_cast<GgufValueType>(elem);
    at = pos_;
    TANDEM_RETURN_IF_ERROR(ReadU64(&count, what));
    // Every element takes at least one byte (strings at least eight).
    uint64_t min_bytes = 0;
    size_t elem_size = v->array_type_ == GgufValueType::kString ? 8 : ScalarSize(v->array_type_);
    if (MulOverflows(count, elem_size, &min_bytes) || min_bytes > size_ - pos_) {
      return Error(absl::StrCat("metadata key '", key, "' claims ", count,
                                " array elements, more than the file holds"),
                   at);
    }
    if (v->array_type_ == GgufValueType::kString) {
      v->strings_.reserve(count);
    } else if (v->array_type_ == GgufValueType::kFloat32 ||
               v->array_type_ == GgufValueType::kFloat64) {
      v->floats_.reserve(count);
    } else {
      v->ints_.reserve(count);
    }
    for (uint64_t i = 0; i < count; ++i)
      TANDEM_RETURN_IF_ERROR(ReadScalar(v->array_type_, v, what));
    return absl::OkStatus();
  }

  absl::Status ReadTensorInfo(uint64_t index) {
    size_t at = pos_;
    GgufTensor t;
    TANDEM_RETURN_IF_ERROR(ReadString(&t.name, absl::StrCat("name of tensor #", index)));
    std::string what = absl::StrCat("tensor '", t.name, "'");
    if (file_.tensor_index_.contains(t.name)) {
      return Error(absl::StrCat("duplicate tensor name '", t.name, "'"), at);
    }
    uint32_t n_dims;
    at = pos_;
    TANDEM_RETURN_IF_ERROR(ReadU32(&n_dims, what));
    if (n_dims == 0 || n_dims > kMaxDims) {
      return Error(absl::StrCat(what, " has ", n_dims, " dimensions (1 to ", kMaxDims, " allowed)"),
                   at);
    }
    uint64_t n_elements = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      uint64_t dim;
      at = pos_;
      TANDEM_RETURN_IF_ERROR(ReadU64(&dim, what));
      if (dim == 0 || dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return Error(absl::StrCat(what, " dimension ", d, " is ", dim), at);
      }
      if (MulOverflows(n_elements, dim, &n_elements) ||
          n_elements > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return Error(absl::StrCat(what, " has too many elements (overflow)"), at);
      }
      t.dims.push_back(static_cast<int64_t>(dim));
    }
    uint32_t type_id;
    at = pos_;
    TANDEM_RETURN_IF_ERROR(ReadU32(&type_id, what));
    auto traits = LookupGgmlType(type_id);
    if (!traits) return Error(absl::StrCat(what, " has unknown type id ", type_id), at);
    t.type = traits->type;
    if (t.dims[0] % traits->block_elements != 0) {
      return Error(absl::StrCat(what, " row length ", t.dims[0], " is not a multiple of the ",
                                traits->name, " block size ", traits->block_elements),
                   at);
    }
    uint64_t n_blocks = n_elements / static_cast<uint64_t>(traits->block_elements);
    if (MulOverflows(n_blocks, static_cast<uint64_t>(traits->block_bytes), &t.size_bytes)) {
      return Error(absl::StrCat(what, " byte size overflows"), at);
    }
    TANDEM_RETURN_IF_ERROR(ReadU64(&t.offset, what));
    file_.tensor_index_[t.name] = file_.tensors_.size();
    file_.tensors_.push_back(std::move(t));
    return absl::OkStatus();
  }

  GgufFile& file_;
  const uint8_t* data_;
  size_t size_;
  uint64_t declared_size_;
  size_t pos_ = 0;
};

// ---------------------------------------------------------------------------
// GgufFile

absl::StatusOr<std::unique_ptr<GgufFile>> GgufFile::Open(const std::string& path) {
  auto mapping = MappedFile::Open(path);
  if (!mapping.ok()) return mapping.status();
  return Parse(std::move(*mapping));
}

absl::StatusOr<std::unique_ptr<GgufFile>> GgufFile::FromBytes(std::string name,
                                                              std::vector<uint8_t> bytes) {
  return Parse(MappedFile::FromBytes(std::move(name), std::move(bytes)));
}

absl::StatusOr<std::unique_ptr<GgufFile>> GgufFile::FromHeader(std::string name,
                                                               std::vector<uint8_t> header,
                                                               uint64_t file_size) {
  if (file_size == 0) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": a model file cannot be empty"));
  }
  return Parse(MappedFile::FromBytes(std::move(name), std::move(header)), file_size);
}

absl::StatusOr<std::unique_ptr<GgufFile>> GgufFile::Parse(std::unique_ptr<MappedFile> mapping,
                                                          uint64_t declared_size) {
  std::unique_ptr<GgufFile> file(new GgufFile(std::move(mapping)));
  GgufParser parser(*file, declared_size);
  absl::Status status = parser.Parse();
  if (!status.ok()) return status;
  file->tensor_blobs_.resize(file->tensors_.size());
  return file;
}

absl::Status GgufFile::AttachTensor(size_t index, std::shared_ptr<const MappedFile> blob) {
  if (index >= tensors_.size()) {
    return absl::OutOfRangeError(
        absl::StrCat(path(), ": no tensor #", index, " (", tensors_.size(), " tensors)"));
  }
  GgufTensor& t = tensors_[index];
  if (t.data != nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat(path(), ": tensor '", t.name, "' already holds its data"));
  }
  if (!blob || blob->size() != t.size_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(path(), ": tensor '", t.name, "' needs ",
                                                   t.size_bytes, " bytes, given ",
                                                   blob ? blob->size() : 0));
  }
  t.data = blob->data();
  tensor_blobs_[index] = std::move(blob);
  return absl::OkStatus();
}

const MappedFile& GgufFile::MappingOf(const GgufTensor& tensor) const {
  const size_t index = static_cast<size_t>(&tensor - tensors_.data());
  if (index < tensor_blobs_.size() && tensor_blobs_[index]) return *tensor_blobs_[index];
  return *mapping_;
}

void GgufFile::WillNeed(const GgufTensor& tensor) const {
  if (tensor.data == nullptr) return;
  const MappedFile& m = MappingOf(tensor);
  m.WillNeed(static_cast<size_t>(tensor.data - m.data()), tensor.size_bytes);
}

void GgufFile::DontNeed(const GgufTensor& tensor) const {
  if (tensor.data == nullptr) return;
  const MappedFile& m = MappingOf(tensor);
  m.DontNeed(static_cast<size_t>(tensor.data - m.data()), tensor.size_bytes);
}

const GgufValue* GgufFile::Find(absl::string_view key) const {
  auto it = metadata_index_.find(key);
  return it == metadata_index_.end() ? nullptr : &metadata_[it->second].second;
}

namespace {
absl::Status Missing(const std::string& path, absl::string_view key) {
  return absl::NotFoundError(absl::StrCat(path, ": metadata key '", key, "' is missing"));
}
absl::Status WithPath(const std::string& path, const absl::Status& s) {
  return absl::Status(s.code(), absl::StrCat(path, ": ", s.message()));
}
}  // namespace

absl::StatusOr<std::string> GgufFile::GetString(absl::string_view key) const {
  const GgufValue* v = Find(key);
  if (!v) return Missing(path(), key);
  auto r = v->AsString(key);
  if (!r.ok()) return WithPath(path(), r.status());
  return r;
}

absl::StatusOr<int64_t> GgufFile::GetInt(absl::string_view key) const {
  const GgufValue* v = Find(key);
  if (!v) return Missing(path(), key);
  auto r = v->AsInt(key);
  if (!r.ok()) return WithPath(path(), r.status());
  return r;
}

absl::StatusOr<double> GgufFile::GetFloat(absl::string_view key) const {
  const GgufValue* v = Find(key);
  if (!v) return Missing(path(), key);
  auto r = v->AsFloat(key);
  if (!r.ok()) return WithPath(path(), r.status());
  return r;
}

absl::StatusOr<int64_t> GgufFile::GetInt(absl::string_view key, int64_t fallback) const {
  if (!Has(key)) return fallback;
  return GetInt(key);
}

absl::StatusOr<double> GgufFile::GetFloat(absl::string_view key, double fallback) const {
  if (!Has(key)) return fallback;
  return GetFloat(key);
}

absl::StatusOr<bool> GgufFile::GetBool(absl::string_view key, bool fallback) const {
  const GgufValue* v = Find(key);
  if (!v) return fallback;
  auto r = v->AsBool(key);
  if (!r.ok()) return WithPath(path(), r.status());
  return r;
}

const GgufTensor* GgufFile::FindTensor(absl::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

absl::StatusOr<const GgufTensor*> GgufFile::GetTensor(absl::string_view name,
                                                      const std::vector<int64_t>& dims) const {
  const GgufTensor* t = FindTensor(name);
  if (!t) return absl::NotFoundError(absl::StrCat(path(), ": tensor '", name, "' is missing"));
  // Trailing dimensions of 1 are equivalent.
  std::vector<int64_t> have = t->dims, want = dims;
  while (have.size() > 1 && have.back() == 1) have.pop_back();
  while (want.size() > 1 && want.back() == 1) want.pop_back();
  if (have != want) {
    return absl::InvalidArgumentError(absl::StrCat(path(), ": tensor '", name, "' has shape ",
                                                   t->ShapeString(), ", expected [",
                                                   absl::StrJoin(dims, ", "), "]"));
  }
  if (t->data == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat(path(), ": tensor '", name, "' is not held here (only its header is)"));
  }
  return t;
}

}  // namespace tandem
