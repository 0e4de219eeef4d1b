#include "model/gguf_writer.h"

#include <cstdio>
#include <cstring>
#include <memory>

#include "absl/strings/str_cat.h"

namespace tandem {
namespace {

class ByteSink {
 public:
  explicit ByteSink(std::vector<uint8_t>& out) : out_(out) {}
  template <typename T>
  void Put(T v) {
    uint8_t b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));
    out_.insert(out_.end(), b, b + sizeof(T));
  }
  void PutString(const std::string& s) {
    Put<uint64_t>(s.size());
    out_.insert(out_.end(), s.begin(), s.end());
  }
  void PadTo(uint64_t alignment) {
    while (out_.size() % alignment) out_.push_back(0);
  }

 private:
  std::vector<uint8_t>& out_;
};

void PutScalar(ByteSink& sink, GgufValueType t, int64_t i, double f, const std::string* s) {
  switch (t) {
    case GgufValueType::kUint8:
      sink.Put<uint8_t>(static_cast<uint8_t>(i));
      break;
    case GgufValueType::kInt8:
      sink.Put<int8_t>(static_cast<int8_t>(i));
      break;
    case GgufValueType::kUint16:
      sink.Put<uint16_t>(static_cast<uint16_t>(i));
      break;
    case GgufValueType::kInt16:
      sink.Put<int16_t>(static_cast<int16_t>(i));
      break;
    case GgufValueType::kUint32:
      sink.Put<uint32_t>(static_cast<uint32_t>(i));
      break;
    case GgufValueType::kInt32:
      sink.Put<int32_t>(static_cast<int32_t>(i));
      break;
    case GgufValueType::kUint64:
      sink.Put<uint64_t>(static_cast<uint64_t>(i));
      break;
    case GgufValueType::kInt64:
      sink.Put<int64_t>(i);
      break;
    case GgufValueType::kFloat32:
      sink.Put<float>(static_cast<float>(f));
      break;
    case GgufValueType::kFloat64:
      sink.Put<double>(f);
      break;
    case GgufValueType::kBool:
      sink.Put<uint8_t>(i ? 1 : 0);
      break;
    case GgufValueType::kString:
      sink.PutString(*s);
      break;
    case GgufValueType::kArray:
      break;
  }
}

}  // namespace

void GgufWriter::AddMetadata(std::string key, GgufValue value) {
  metadata_.emplace_back(std::move(key), std::move(value));
}

void GgufWriter::AddTensor(std::string name, std::vector<int64_t> dims, GgmlType type,
                           std::vector<uint8_t> data) {
  tensors_.push_back({std::move(name), std::move(dims), type, std::move(data)});
}

std::vector<uint8_t> GgufWriter::Serialize() const {
  std::vector<uint8_t> out;
  ByteSink sink(out);
  sink.Put<uint32_t>(0x46554747);
  sink.Put<uint32_t>(3);
  sink.Put<uint64_t>(tensors_.size());
  sink.Put<uint64_t>(metadata_.size());
  for (const auto& [key, v] : metadata_) {
    sink.PutString(key);
    sink.Put<uint32_t>(static_cast<uint32_t>(v.type_));
    if (v.type_ != GgufValueType::kArray) {
      PutScalar(sink, v.type_, v.ints_.empty() ? 0 : v.ints_[0],
                v.floats_.empty() ? 0 : v.floats_[0],
                v.strings_.empty() ? nullptr : &v.strings_[0]);
      continue;
    }
    sink.Put<uint32_t>(static_cast<uint32_t>(v.array_type_));
    sink.Put<uint64_t>(v.array_size());
    for (size_t i = 0; i < v.array_size(); ++i) {
      PutScalar(sink, v.array_type_, i < v.ints_.size() ? v.ints_[i] : 0,
                i < v.floats_.size() ? v.floats_[i] : 0,
                i < v.strings_.size() ? &v.strings_[i] : nullptr);
    }
  }
  uint64_t offset = 0;
  for (const auto& t : tensors_) {
    sink.PutString(t.name);
    sink.Put<uint32_t>(static_cast<uint32_t>(t.dims.size()));
    for (int64_t d : t.dims) sink.Put<uint64_t>(static_cast<uint64_t>(d));
    sink.Put<uint32_t>(static_cast<uint32_t>(t.type));
    sink.Put<uint64_t>(offset);
    offset += (t.data.size() + kAlignment - 1) / kAlignment * kAlignment;
  }
  sink.PadTo(kAlignment);
  for (const auto& t : tensors_) {
    out.insert(out.end(), t.data.begin(), t.data.end());
    sink.PadTo(kAlignment);
  }
  return out;
}

absl::Status GgufWriter::WriteFile(const std::string& path) const {
  std::vector<uint8_t> bytes = Serialize();
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "wb"), &std::fclose);
  if (!f) return absl::PermissionDeniedError(absl::StrCat(path, ": cannot create"));
  if (std::fwrite(bytes.data(), 1, bytes.size(), f.get()) != bytes.size()) {
    return absl::DataLossError(absl::StrCat(path, ": short write"));
  }
  return absl::OkStatus();
}

}  // namespace tandem
