// Runs the built `tandem bench` on the shared stories260K model and checks that its JSON
// report has every field, each positive and finite. Speeds are not asserted: the machine
// is shared and noisy.
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace {

using Json = nlohmann::json;

constexpr char kTandem[] = TANDEM_BINARY_DIR "/cli/tandem";
constexpr char kModel[] = TANDEM_SHARED_DIR "/models/stories260K-f32.gguf";

struct CommandResult {
  int exit_code = -1;
  std::string out;
};

CommandResult RunTandem(const std::string& args) {
  const std::filesystem::path out =
      std::filesystem::temp_directory_path() / ("tandem_bench_cli_" + std::to_string(::getpid()));
  const std::string command = std::string(kTandem) + " " + args + " >" + out.string();
  const int status = std::system(command.c_str());
  CommandResult run;
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream in(out);
  run.out = {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  std::filesystem::remove(out);
  return run;
}

TEST(BenchCliTest, JsonReportHasPositiveFiniteFields) {
  const CommandResult run = RunTandem(std::string("bench -m ") + kModel +
                                      " -p 8 -n 8 -r 1 -t 2 --bandwidth-mib 64 --json");
  ASSERT_EQ(run.exit_code, 0);
  const Json report = Json::parse(run.out);
  for (const char* field : {"prompt_tps", "prompt_tps_min", "prompt_tps_max", "decode_tps",
                            "decode_tps_min", "decode_tps_max", "bytes_per_token", "bandwidth_gbs",
                            "roofline_decode_tps", "decode_efficiency"}) {
    ASSERT_TRUE(report.contains(field)) << field << " missing from " << run.out;
    ASSERT_TRUE(report[field].is_number()) << field;
    const double value = report[field].get<double>();
    EXPECT_TRUE(std::isfinite(value)) << field << " = " << value;
    EXPECT_GT(value, 0) << field;
  }
  EXPECT_EQ(report["reps"], 1);
  EXPECT_EQ(report["threads"], 2);
  EXPECT_EQ(report["prompt_tokens"], 8);
  EXPECT_EQ(report["gen_tokens"], 8);
  // stories260K is all f32: 5 layers of wq, wo (64 x 64), wk, wv (32 x 64: 4 kv heads of
  // 8) and three 64 x 172 feed-forward matrices, plus the 512 x 64 head.
  EXPECT_EQ(report["bytes_per_token"],
            4 * (5 * (2 * 64 * 64 + 2 * 32 * 64 + 3 * 64 * 172) + 512 * 64));
  EXPECT_EQ(report["bytes_per_token_by_type"].size(), 1u);
  EXPECT_TRUE(report["bytes_per_token_by_type"].contains("f32"));
}

TEST(BenchCliTest, RejectsMissingModel) {
  const CommandResult run = RunTandem("bench -m /nonexistent.gguf -p 8 -n 8 -r 1 2>/dev/null");
  EXPECT_NE(run.exit_code, 0);
}

}  // namespace
