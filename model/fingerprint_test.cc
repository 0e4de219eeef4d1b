#include "model/fingerprint.h"

#include <gtest/gtest.h>
#include <openssl/sha.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "model/digest_cache.h"
#include "model/gguf_writer.h"

namespace tandem {
namespace {

namespace fs = std::filesystem;

Sha256Digest OneShot(const uint8_t* data, size_t size) {
  Sha256Digest d;
  SHA256(data, size, d.data());
  return d;
}

std::vector<uint8_t> TensorBytes(size_t n, uint8_t seed) {
  std::vector<uint8_t> bytes(n);
  for (size_t i = 0; i < n; ++i) bytes[i] = static_cast<uint8_t>(seed + 7 * i);
  return bytes;
}

// A small model with two tensors; `flip` changes one byte of the second tensor's data.
GgufWriter TinyModel(bool flip = false) {
  GgufWriter w;
  w.AddMetadata("general.architecture", GgufValue::String("llama"));
  w.AddMetadata("test.ints", GgufValue::IntArray(GgufValueType::kInt32, {1, -2, 3}));
  std::vector<uint8_t> b = TensorBytes(4 * 6, 9);
  if (flip) b[5] ^= 1;
  w.AddTensor("a", {4, 2}, GgmlType::kF32, TensorBytes(4 * 8, 1));
  w.AddTensor("b", {6}, GgmlType::kF32, b);
  return w;
}

class FingerprintTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("tandem_fingerprint_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    options_.cache_dir = (dir_ / "cache").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Write(const std::string& name, const GgufWriter& w) {
    std::string path = (dir_ / name).string();
    EXPECT_TRUE(w.WriteFile(path).ok());
    return path;
  }
  std::unique_ptr<GgufFile> Open(const std::string& path) {
    auto file = GgufFile::Open(path);
    EXPECT_TRUE(file.ok()) << file.status();
    return file.ok() ? std::move(*file) : nullptr;
  }
  // The digests and where they came from.
  std::pair<ModelDigests, DigestSource> Load(const std::string& path) {
    auto file = Open(path);
    DigestSource source;
    ModelDigests d = LoadOrComputeModelDigests(*file, options_, &source);
    return {d, source};
  }
  std::string SidecarPath(const std::string& model) {
    return DigestSidecarPaths(fs::absolute(model).string(), options_.cache_dir).at(0);
  }

  fs::path dir_;
  FingerprintOptions options_;
};

TEST_F(FingerprintTest, MatchesAnIndependentComputation) {
  GgufWriter w = TinyModel();
  std::vector<uint8_t> bytes = w.Serialize();
  auto file = Open(Write("tiny.gguf", w));
  ModelDigests d = ComputeModelDigests(*file);

  // Tensor digests are plain SHA-256 of the bytes given to the writer.
  std::vector<uint8_t> a = TensorBytes(4 * 8, 1), b = TensorBytes(4 * 6, 9);
  ASSERT_EQ(d.tensor_digests.size(), 2u);
  EXPECT_EQ(d.tensor_digests[0], OneShot(a.data(), a.size()));
  EXPECT_EQ(d.tensor_digests[1], OneShot(b.data(), b.size()));

  // The fingerprint: tag, header length (little-endian), header, tensor count, digests.
  const uint64_t header = file->data_offset();
  std::vector<uint8_t> message;
  const std::string tag = "tandem-model-sha256-v1";
  message.insert(message.end(), tag.begin(), tag.end());
  for (int i = 0; i < 8; ++i) message.push_back(static_cast<uint8_t>(header >> (8 * i)));
  message.insert(message.end(), bytes.begin(), bytes.begin() + static_cast<ptrdiff_t>(header));
  message.insert(message.end(), {2, 0, 0, 0, 0, 0, 0, 0});
  for (const auto& t : d.tensor_digests) message.insert(message.end(), t.begin(), t.end());
  EXPECT_EQ(d.fingerprint, OneShot(message.data(), message.size()));

  // Pinned from python3 hashlib over the same file, so a change to the scheme shows.
  EXPECT_EQ(Sha256Hex(d.fingerprint),
            "8159fdbcbc3cddc0175f63752cf392c2da23b6a0c3f8716aef57b035db92a8dc");
}

TEST_F(FingerprintTest, OneWeightByteChangesTheFingerprint) {
  auto same = Open(Write("same.gguf", TinyModel()));
  auto copy = Open(Write("copy.gguf", TinyModel()));
  auto flipped = Open(Write("flipped.gguf", TinyModel(/*flip=*/true)));
  ModelDigests d_same = ComputeModelDigests(*same);
  ModelDigests d_copy = ComputeModelDigests(*copy);
  ModelDigests d_flipped = ComputeModelDigests(*flipped);
  EXPECT_EQ(d_same.fingerprint, d_copy.fingerprint);
  EXPECT_NE(d_same.fingerprint, d_flipped.fingerprint);
  EXPECT_EQ(d_same.tensor_digests[0], d_flipped.tensor_digests[0]);
  EXPECT_NE(d_same.tensor_digests[1], d_flipped.tensor_digests[1]);
  EXPECT_EQ(ModelFingerprint(*same, options_).size(), 64u);
}

TEST_F(FingerprintTest, SecondLoadUsesTheSidecar) {
  std::string path = Write("tiny.gguf", TinyModel());
  auto [first, first_source] = Load(path);
  EXPECT_EQ(first_source, DigestSource::kComputed);
  EXPECT_TRUE(fs::exists(SidecarPath(path)));
  auto [second, second_source] = Load(path);
  EXPECT_EQ(second_source, DigestSource::kSidecar);
  EXPECT_EQ(second.fingerprint, first.fingerprint);
  EXPECT_EQ(second.tensor_digests, first.tensor_digests);
}

TEST_F(FingerprintTest, DefaultSidecarIsInTheUserCacheNotBesideTheModel) {
  options_.cache_dir.clear();
  const std::string cache = (dir_ / "xdg").string();
  ::setenv("XDG_CACHE_HOME", cache.c_str(), 1);
  std::string path = Write("tiny.gguf", TinyModel());
  EXPECT_EQ(Load(path).second, DigestSource::kComputed);
  EXPECT_FALSE(fs::exists(path + ".tandem-sha256"));
  EXPECT_TRUE(fs::exists(SidecarPath(path)));
  EXPECT_EQ(SidecarPath(path).rfind(cache + "/tandem/", 0), 0u);
  EXPECT_EQ(Load(path).second, DigestSource::kSidecar);
  ::unsetenv("XDG_CACHE_HOME");
}

TEST_F(FingerprintTest, ChangedModelIsHashedAgain) {
  std::string path = Write("tiny.gguf", TinyModel());
  ModelDigests before = Load(path).first;
  // Same size, new weights and a new mtime: the sidecar's key no longer matches.
  Write("tiny.gguf", TinyModel(/*flip=*/true));
  fs::last_write_time(path, fs::last_write_time(path) + std::chrono::seconds(5));
  auto [after, source] = Load(path);
  EXPECT_EQ(source, DigestSource::kComputed);
  EXPECT_NE(after.fingerprint, before.fingerprint);
  EXPECT_EQ(Load(path).second, DigestSource::kSidecar);
}

TEST_F(FingerprintTest, DamagedSidecarsAreIgnored) {
  std::string path = Write("tiny.gguf", TinyModel());
  ModelDigests good = Load(path).first;
  const std::string sidecar = SidecarPath(path);
  std::string text;
  {
    std::ifstream in(sidecar, std::ios::binary);
    text.assign(std::istreambuf_iterator<char>(in), {});
  }
  ASSERT_FALSE(text.empty());
  const size_t digest_line = text.find("\ntensors 2\n") + std::strlen("\ntensors 2\n");

  std::vector<std::string> damaged = {
      "",
      "garbage",
      text.substr(0, text.size() - 1),  // truncated
      text + "x",                       // trailing bytes
      std::string(text.size(), '\0'),   // zeros
      std::string(1 << 20, 'f'),        // too long
  };
  std::string flipped_digest = text;  // a tensor digest that disagrees with the fingerprint
  flipped_digest[digest_line] = flipped_digest[digest_line] == '0' ? '1' : '0';
  damaged.push_back(flipped_digest);
  std::string upper = text;  // not the canonical spelling
  upper[digest_line] = 'A';
  damaged.push_back(upper);
  std::string other_inode = text;  // another file's key
  other_inode.replace(other_inode.find("\ninode ") + 7, 1, "x");
  damaged.push_back(other_inode);

  for (size_t i = 0; i < damaged.size(); ++i) {
    std::ofstream(sidecar, std::ios::binary | std::ios::trunc) << damaged[i];
    auto [d, source] = Load(path);
    EXPECT_EQ(source, DigestSource::kComputed) << "case " << i;
    EXPECT_EQ(d.fingerprint, good.fingerprint) << "case " << i;
    EXPECT_EQ(d.tensor_digests, good.tensor_digests) << "case " << i;
  }
}

TEST_F(FingerprintTest, AnotherModelsSidecarIsNotTrusted) {
  std::string a = Write("a.gguf", TinyModel());
  std::string b = Write("b.gguf", TinyModel(/*flip=*/true));
  Load(a);
  fs::copy_file(SidecarPath(a), SidecarPath(b), fs::copy_options::overwrite_existing);
  auto [d, source] = Load(b);
  EXPECT_EQ(source, DigestSource::kComputed);
  EXPECT_EQ(d.fingerprint, ComputeModelDigests(*Open(b)).fingerprint);
}

TEST(DigestSidecarTest, ParsesOnlyWhatItWrote) {
  DigestCacheKey key{"/models/a b\nc.gguf", FileIdentity{1, 2, 3, 4}};
  CachedDigests digests;
  digests.fingerprint.fill(0xab);
  digests.tensor_digests = {Sha256Digest{}, Sha256Digest{}};
  digests.tensor_digests[1].fill(0x01);
  std::string text = FormatDigestSidecar(key, digests);
  auto parsed = ParseDigestSidecar(text, key, 2);
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->fingerprint, digests.fingerprint);
  EXPECT_EQ(parsed->tensor_digests, digests.tensor_digests);

  EXPECT_FALSE(ParseDigestSidecar(text, key, 3).has_value());
  DigestCacheKey moved = key;
  moved.absolute_path = "/models/other.gguf";
  EXPECT_FALSE(ParseDigestSidecar(text, moved, 2).has_value());
  DigestCacheKey touched = key;
  touched.identity.mtime_ns += 1;
  EXPECT_FALSE(ParseDigestSidecar(text, touched, 2).has_value());
}

TEST(DigestSidecarTest, PlacesInACacheFolderNeverBesideTheModel) {
  for (const std::string& p : DigestSidecarPaths("/models/m.gguf", "")) {
    EXPECT_NE(p.rfind("/models/", 0), 0u) << p;
  }
  auto explicit_dir = DigestSidecarPaths("/models/m.gguf", "/state");
  ASSERT_EQ(explicit_dir.size(), 1u);
  EXPECT_EQ(explicit_dir[0].rfind("/state/", 0), 0u);
}

}  // namespace
}  // namespace tandem
