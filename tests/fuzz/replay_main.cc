// Replays one fuzz target's seed corpus and regression inputs (inputs that once crashed
// it) as an ordinary unit test, so every build checks them, not only the fuzzing build.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

int ReplayDirectory(const std::filesystem::path& dir) {
  if (!std::filesystem::is_directory(dir)) return 0;
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.is_regular_file()) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  for (const auto& path : files) {
    SCOPED_TRACE(path.string());
    std::ifstream in(path, std::ios::binary);
    const std::vector<char> bytes((std::istreambuf_iterator<char>(in)),
                                  std::istreambuf_iterator<char>());
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  }
  return static_cast<int>(files.size());
}

TEST(FuzzReplay, SeedCorpusAndRegressionsRunClean) {
  const std::filesystem::path dir = TANDEM_FUZZ_TARGET_DIR;
  const int seeds = ReplayDirectory(dir / "corpus");
  ReplayDirectory(dir / "regressions");
  EXPECT_GT(seeds, 0) << "no seed corpus in " << dir;
}

}  // namespace
