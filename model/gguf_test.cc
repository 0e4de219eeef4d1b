#include "model/gguf.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "model/gguf_writer.h"
#include "model/hparams.h"

namespace tandem {
namespace {

using ::testing::HasSubstr;

std::string TempPath(const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          ("tandem_gguf_test_" + std::to_string(::getpid()) + "_" + name))
      .string();
}

std::string WriteBytes(const std::string& name, const std::vector<uint8_t>& bytes) {
  std::string path = TempPath(name);
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()),
             static_cast<std::streamsize>(bytes.size()));
  return path;
}

// A small valid file: two metadata entries and two f32 tensors.
GgufWriter ValidWriter() {
  GgufWriter w;
  w.AddMetadata("general.architecture", GgufValue::String("llama"));
  w.AddMetadata("test.ints", GgufValue::IntArray(GgufValueType::kInt32, {1, -2, 3}));
  std::vector<uint8_t> a(4 * 8, 0), b(4 * 6, 0);
  float one = 1.5f;
  std::memcpy(a.data(), &one, 4);
  w.AddTensor("a", {4, 2}, GgmlType::kF32, a);
  w.AddTensor("b", {6}, GgmlType::kF32, b);
  return w;
}

// Little-endian helpers to build hand-made corrupt files.
struct Builder {
  std::vector<uint8_t> bytes;
  template <typename T>
  Builder& Put(T v) {
    uint8_t b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));
    bytes.insert(bytes.end(), b, b + sizeof(T));
    return *this;
  }
  Builder& Str(const std::string& s) {
    Put<uint64_t>(s.size());
    bytes.insert(bytes.end(), s.begin(), s.end());
    return *this;
  }
  Builder& Header(uint64_t n_tensors, uint64_t n_kv) {
    return Put<uint32_t>(0x46554747).Put<uint32_t>(3).Put<uint64_t>(n_tensors).Put<uint64_t>(n_kv);
  }
  Builder& TensorInfo(const std::string& name, std::vector<uint64_t> dims, uint32_t type,
                      uint64_t offset) {
    Str(name).Put<uint32_t>(static_cast<uint32_t>(dims.size()));
    for (auto d : dims) Put<uint64_t>(d);
    return Put<uint32_t>(type).Put<uint64_t>(offset);
  }
  Builder& PadTo(size_t a) {
    while (bytes.size() % a) bytes.push_back(0);
    return *this;
  }
  Builder& Zeros(size_t n) {
    bytes.insert(bytes.end(), n, 0);
    return *this;
  }
};

absl::Status OpenStatus(const std::string& name, const std::vector<uint8_t>& bytes) {
  std::string path = WriteBytes(name, bytes);
  auto f = GgufFile::Open(path);
  std::remove(path.c_str());
  return f.status();
}

TEST(GgufTest, RoundTripsWriterOutput) {
  std::string path = WriteBytes("valid", ValidWriter().Serialize());
  auto f = GgufFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ((*f)->version(), 3u);
  EXPECT_EQ(*(*f)->GetString("general.architecture"), "llama");
  EXPECT_THAT(*(*f)->Find("test.ints")->AsIntArray("test.ints"), ::testing::ElementsAre(1, -2, 3));
  auto a = (*f)->GetTensor("a", {4, 2});
  ASSERT_TRUE(a.ok()) << a.status();
  float v;
  std::memcpy(&v, (*a)->data, 4);
  EXPECT_EQ(v, 1.5f);
  EXPECT_EQ((*a)->size_bytes, 32u);
  auto wrong = (*f)->GetTensor("a", {2, 4});
  EXPECT_THAT(wrong.status().message(), HasSubstr("tensor 'a' has shape [4, 2], expected [2, 4]"));
  auto missing = (*f)->GetTensor("zzz", {1});
  EXPECT_THAT(missing.status().message(), HasSubstr("tensor 'zzz' is missing"));
  EXPECT_THAT((*f)->GetInt("general.architecture").status().message(),
              HasSubstr("'general.architecture' is string, expected an integer"));
  std::remove(path.c_str());
}

TEST(GgufTest, RejectsMissingFile) {
  auto f = GgufFile::Open("/nonexistent/model.gguf");
  EXPECT_EQ(f.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(f.status().message(), HasSubstr("/nonexistent/model.gguf"));
}

TEST(GgufTest, RejectsBadMagic) {
  Builder b;
  b.Put<uint32_t>(0x12345678).Put<uint32_t>(3).Put<uint64_t>(0).Put<uint64_t>(0);
  EXPECT_THAT(OpenStatus("magic", b.bytes).message(), HasSubstr("not a GGUF file"));
}

TEST(GgufTest, RejectsUnsupportedVersion) {
  Builder b;
  b.Put<uint32_t>(0x46554747).Put<uint32_t>(7).Put<uint64_t>(0).Put<uint64_t>(0);
  EXPECT_THAT(OpenStatus("version", b.bytes).message(), HasSubstr("unsupported GGUF version 7"));
}

TEST(GgufTest, RejectsTruncatedHeader) {
  Builder b;
  b.Put<uint32_t>(0x46554747).Put<uint32_t>(3).Put<uint32_t>(0);
  EXPECT_THAT(OpenStatus("trunc", b.bytes).message(),
              HasSubstr("file truncated while reading tensor count"));
}

TEST(GgufTest, RejectsTruncationAnywhere) {
  // Every strict prefix of a valid file is rejected with a message, never a crash.
  auto bytes = ValidWriter().Serialize();
  // The file needs every byte up to the end of tensor b's data; padding after it is optional.
  std::string path = WriteBytes("full", bytes);
  auto full = GgufFile::Open(path);
  ASSERT_TRUE(full.ok()) << full.status();
  const GgufTensor* b = (*full)->FindTensor("b");
  const size_t needed = static_cast<size_t>(b->data + b->size_bytes - (*full)->mapping().data());
  std::remove(path.c_str());
  ASSERT_LT(needed, bytes.size());
  for (size_t n = 1; n < needed; ++n) {
    std::vector<uint8_t> prefix(bytes.begin(), bytes.begin() + static_cast<long>(n));
    absl::Status s = OpenStatus("prefix", prefix);
    EXPECT_FALSE(s.ok()) << "prefix of " << n << " bytes was accepted";
    EXPECT_THAT(s.message(), HasSubstr("invalid GGUF")) << n;
  }
}

TEST(GgufTest, RejectsAbsurdTensorCount) {
  Builder b;
  b.Header(uint64_t{1} << 40, 0);
  EXPECT_THAT(OpenStatus("absurd", b.bytes).message(),
              HasSubstr("tensor count 1099511627776 is absurd"));
}

TEST(GgufTest, RejectsCountsLargerThanFile) {
  Builder b;
  b.Header(1000, 1000);
  EXPECT_THAT(OpenStatus("counts", b.bytes).message(), HasSubstr("do not fit in the file"));
}

TEST(GgufTest, RejectsAbsurdStringLength) {
  Builder b;
  b.Header(0, 1).Put<uint64_t>(uint64_t{1} << 62);
  b.Zeros(16);
  EXPECT_THAT(OpenStatus("strlen", b.bytes).message(),
              HasSubstr("string length 4611686018427387904 is absurd"));
}

TEST(GgufTest, RejectsHugeArrayCount) {
  Builder b;
  b.Header(0, 1).Str("k").Put<uint32_t>(9).Put<uint32_t>(4).Put<uint64_t>(uint64_t{1} << 61);
  b.Zeros(16);
  EXPECT_THAT(OpenStatus("array", b.bytes).message(),
              HasSubstr("claims 2305843009213693952 array elements"));
}

TEST(GgufTest, RejectsUnknownValueType) {
  Builder b;
  b.Header(0, 1).Str("k").Put<uint32_t>(99).Zeros(16);
  EXPECT_THAT(OpenStatus("vtype", b.bytes).message(),
              HasSubstr("metadata key 'k' has unknown value type 99"));
}

TEST(GgufTest, RejectsUnknownTensorType) {
  Builder b;
  b.Header(1, 0).TensorInfo("w", {32}, 77, 0).PadTo(32).Zeros(256);
  EXPECT_THAT(OpenStatus("ttype", b.bytes).message(),
              HasSubstr("tensor 'w' has unknown type id 77"));
}

TEST(GgufTest, RejectsTensorPastEnd) {
  Builder b;
  b.Header(1, 0).TensorInfo("w", {64, 64}, 0, 0).PadTo(32).Zeros(128);
  EXPECT_THAT(OpenStatus("pastend", b.bytes).message(),
              HasSubstr("tensor 'w' (16384 bytes at data offset 0) runs past the end"));
}

TEST(GgufTest, RejectsOffsetOverflow) {
  Builder b;
  b.Header(1, 0).TensorInfo("w", {8}, 0, ~uint64_t{0} - 31).PadTo(32).Zeros(64);
  absl::Status s = OpenStatus("overflow", b.bytes);
  EXPECT_THAT(s.message(), HasSubstr("runs past the end"));
}

TEST(GgufTest, RejectsDimensionOverflow) {
  Builder b;
  b.Header(1, 0).TensorInfo("w", {uint64_t{1} << 40, uint64_t{1} << 40}, 0, 0).PadTo(32).Zeros(64);
  EXPECT_THAT(OpenStatus("dimoverflow", b.bytes).message(), HasSubstr("too many elements"));
}

TEST(GgufTest, RejectsDuplicateTensorNames) {
  Builder b;
  b.Header(2, 0).TensorInfo("w", {8}, 0, 0).TensorInfo("w", {8}, 0, 32).PadTo(32).Zeros(64);
  EXPECT_THAT(OpenStatus("dup", b.bytes).message(), HasSubstr("duplicate tensor name 'w'"));
}

TEST(GgufTest, RejectsDuplicateMetadataKeys) {
  Builder b;
  b.Header(0, 2).Str("k").Put<uint32_t>(4).Put<uint32_t>(1).Str("k").Put<uint32_t>(4).Put<uint32_t>(
      2);
  EXPECT_THAT(OpenStatus("dupkey", b.bytes).message(), HasSubstr("duplicate metadata key 'k'"));
}

TEST(GgufTest, RejectsMisalignedData) {
  Builder b;
  b.Header(1, 0).TensorInfo("w", {8}, 0, 4).PadTo(32).Zeros(64);
  EXPECT_THAT(OpenStatus("misaligned", b.bytes).message(),
              HasSubstr("tensor 'w' data offset 4 is not a multiple of the alignment 32"));
}

TEST(GgufTest, RejectsBadAlignmentValue) {
  Builder b;
  b.Header(0, 1).Str("general.alignment").Put<uint32_t>(4).Put<uint32_t>(24);
  EXPECT_THAT(OpenStatus("badalign", b.bytes).message(),
              HasSubstr("general.alignment 24 is not a power of two"));
}

TEST(GgufTest, RejectsRowNotMultipleOfBlock) {
  Builder b;
  b.Header(1, 0).TensorInfo("q", {33}, 2, 0).PadTo(32).Zeros(64);
  EXPECT_THAT(OpenStatus("block", b.bytes).message(),
              HasSubstr("row length 33 is not a multiple of the q4_0 block size 32"));
}

TEST(GgufTest, RejectsZeroDims) {
  Builder b;
  b.Header(1, 0).Str("w").Put<uint32_t>(0).Put<uint32_t>(0).Put<uint64_t>(0).PadTo(32);
  EXPECT_THAT(OpenStatus("zerodims", b.bytes).message(), HasSubstr("tensor 'w' has 0 dimensions"));
}

TEST(GgufTest, RejectsNestedArray) {
  Builder b;
  b.Header(0, 1).Str("k").Put<uint32_t>(9).Put<uint32_t>(9).Put<uint64_t>(1).Zeros(16);
  EXPECT_THAT(OpenStatus("nested", b.bytes).message(), HasSubstr("nested array"));
}

TEST(GgufTest, RejectsBadBool) {
  Builder b;
  b.Header(0, 1).Str("k").Put<uint32_t>(7).Put<uint8_t>(5);
  EXPECT_THAT(OpenStatus("bool", b.bytes).message(), HasSubstr("bool value 5"));
}

TEST(GgufTest, AcceptsUnpaddedFileWithoutTensors) {
  Builder b;
  b.Header(0, 1).Str("k").Put<uint32_t>(4).Put<uint32_t>(7);  // 33 bytes, no padding
  EXPECT_TRUE(OpenStatus("unpadded", b.bytes).ok());
}

TEST(GgufTest, ErrorsNameTheFile) {
  Builder b;
  b.Put<uint32_t>(0x12345678);
  std::string path = WriteBytes("named", b.bytes);
  auto f = GgufFile::Open(path);
  EXPECT_THAT(f.status().message(), HasSubstr(path));
  std::remove(path.c_str());
}

TEST(GgufTest, ReadsStories260K) {
  auto f = GgufFile::Open(TANDEM_SHARED_DIR "/models/stories260K-f32.gguf");
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ((*f)->tensors().size(), 48u);
  auto h = ReadHparams(**f);
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->n_embd, 64);
  EXPECT_EQ(h->n_layer, 5);
  EXPECT_EQ(h->n_head, 8);
  EXPECT_EQ(h->n_head_kv, 4);
  EXPECT_EQ(h->n_ff, 172);
  EXPECT_EQ(h->n_vocab, 512);
  EXPECT_EQ(h->n_rot, 8);
  EXPECT_EQ(h->n_ctx_train, 128);
  EXPECT_FLOAT_EQ(h->rms_eps, 1e-5f);
  auto tokens = (*f)->Find("tokenizer.ggml.tokens")->AsStringArray("tokenizer.ggml.tokens");
  ASSERT_TRUE(tokens.ok());
  EXPECT_EQ(tokens->size(), 512u);
  EXPECT_EQ((*tokens)[1], "<s>");
}

TEST(GgufTest, ReadsEveryStoriesVariant) {
  for (const char* v : {"f16", "q8_0", "q4_0"}) {
    auto f = GgufFile::Open(std::string(TANDEM_SHARED_DIR "/models/stories260K-") + v + ".gguf");
    ASSERT_TRUE(f.ok()) << f.status();
    EXPECT_EQ((*f)->tensors().size(), 48u) << v;
  }
}

// A node without the model file: the header alone, then tensors attached one by one.
TEST(GgufTest, HeaderAloneThenAttachedTensors) {
  const std::vector<uint8_t> bytes = ValidWriter().Serialize();
  auto full = GgufFile::FromBytes("full", bytes);
  ASSERT_TRUE(full.ok()) << full.status();
  const uint64_t header_size = (*full)->data_offset();
  std::vector<uint8_t> header(bytes.begin(), bytes.begin() + header_size);

  auto view = GgufFile::FromHeader("view", header, bytes.size());
  ASSERT_TRUE(view.ok()) << view.status();
  ASSERT_EQ((*view)->tensors().size(), (*full)->tensors().size());
  const GgufTensor& a = (*view)->tensors()[0];
  EXPECT_EQ(a.data, nullptr);
  EXPECT_NE((*view)->FindTensor(a.name), nullptr);  // known by name and shape...
  auto missing = (*view)->GetTensor(a.name, a.dims);
  ASSERT_FALSE(missing.ok());  // ...but holds no bytes
  EXPECT_THAT(missing.status().message(), HasSubstr("is not held here"));

  const GgufTensor& original = (*full)->tensors()[0];
  std::vector<uint8_t> data(original.data, original.data + original.size_bytes);
  EXPECT_FALSE((*view)->AttachTensor(0, MappedFile::FromBytes("short", {1, 2, 3})).ok());
  EXPECT_FALSE((*view)->AttachTensor(9, MappedFile::FromBytes("blob", data)).ok());
  ASSERT_TRUE((*view)->AttachTensor(0, MappedFile::FromBytes("blob", data)).ok());
  EXPECT_FALSE((*view)->AttachTensor(0, MappedFile::FromBytes("blob", data)).ok());
  auto held = (*view)->GetTensor(a.name, a.dims);
  ASSERT_TRUE(held.ok()) << held.status();
  EXPECT_EQ(std::memcmp((*held)->data, original.data, original.size_bytes), 0);
  (*view)->WillNeed(**held);  // in-memory blobs: advice is a no-op, never a crash
  (*view)->DontNeed(**held);
}

TEST(GgufTest, HeaderAloneIsCheckedAgainstTheDeclaredSize) {
  const std::vector<uint8_t> bytes = ValidWriter().Serialize();
  auto full = GgufFile::FromBytes("full", bytes);
  ASSERT_TRUE(full.ok());
  std::vector<uint8_t> header(bytes.begin(), bytes.begin() + (*full)->data_offset());
  // Tensors that would run past the file's declared end.
  EXPECT_THAT(GgufFile::FromHeader("view", header, header.size() + 8).status().message(),
              HasSubstr("runs past the end"));
  // A header that does not end where the data starts.
  std::vector<uint8_t> longer = header;
  longer.resize(header.size() + 32, 0);
  EXPECT_THAT(GgufFile::FromHeader("view", longer, bytes.size()).status().message(),
              HasSubstr("does not end at the data section"));
  EXPECT_FALSE(GgufFile::FromHeader("view", header, 0).ok());
}

}  // namespace
}  // namespace tandem
