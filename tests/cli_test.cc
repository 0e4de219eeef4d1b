// The `tandem` executable as a user meets it: the documented story, JSON output, and one
// clear line on stderr with a non-zero exit for every kind of bad input.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli/process_group.h"
#include "tests/golden_support.h"
#include "tests/local_cluster.h"

namespace tandem {
namespace {

using ::testing::HasSubstr;
using testing::ReadFile;
using testing::SharedPath;
using testing::TandemBinary;

using Result = testing::CommandResult;

Result Tandem(const std::string& args) { return testing::RunTandem(args); }

const std::string kModel = SharedPath("models/stories260K-f32.gguf");

TEST(CliTest, GenerateTellsTheDocumentedStory) {
  Result r = Tandem("generate -m " + kModel + " -p \"Once upon a time\" -n 48 --temp 0");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json ref = testing::ReadJson(SharedPath("reference/stories260K-f32.json"));
  EXPECT_EQ(r.out, ref["prompts"][0]["greedy_text"].get<std::string>() + "\n");
}

TEST(CliTest, GenerateJsonHasIdsTextAndTimings) {
  Result r = Tandem("generate -m " + kModel + " -p \"The little dog\" -n 48 --temp 0 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  nlohmann::json ref = testing::ReadJson(SharedPath("reference/stories260K-f32.json"));
  EXPECT_EQ(j["prompt_ids"], ref["prompts"][1]["prompt_ids"]);
  EXPECT_EQ(j["ids"], ref["prompts"][1]["greedy_ids"]);
  EXPECT_EQ(j["text"], ref["prompts"][1]["greedy_text"]);
  EXPECT_GT(j["timings"]["prompt_tokens_per_s"].get<double>(), 0);
  EXPECT_GT(j["timings"]["generated_tokens_per_s"].get<double>(), 0);
}

TEST(CliTest, RunJsonEqualsGenerateJson) {
  Result local =
      Tandem("generate -m " + kModel + " -p \"Lily wanted to\" -n 24 --temp 0.8 --seed 5 --json");
  Result cluster = Tandem("run -m " + kModel +
                          " --nodes 2 -p \"Lily wanted to\" -n 24 --temp 0.8 --seed 5 --json");
  ASSERT_EQ(local.exit_code, 0) << local.err;
  ASSERT_EQ(cluster.exit_code, 0) << cluster.err;
  auto a = nlohmann::json::parse(local.out), b = nlohmann::json::parse(cluster.out);
  EXPECT_EQ(a["ids"], b["ids"]);
  EXPECT_EQ(a["text"], b["text"]);
  EXPECT_EQ(a["prompt_ids"], b["prompt_ids"]);
  EXPECT_THAT(cluster.err, HasSubstr("plan (epoch 1): 2 stage(s)"));
}

void ExpectOneClearLine(const Result& r, const std::string& needle) {
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr(needle));
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
}

TEST(CliTest, MissingModelIsOneClearLine) {
  ExpectOneClearLine(Tandem("generate -m /nonexistent.gguf -p hi"),
                     "/nonexistent.gguf: cannot open");
  ExpectOneClearLine(Tandem("info -m /nonexistent.gguf"), "/nonexistent.gguf: cannot open");
}

TEST(CliTest, CorruptModelIsOneClearLine) {
  const std::string path = std::filesystem::temp_directory_path() / "tandem_cli_corrupt.gguf";
  std::string bytes = ReadFile(kModel);
  std::ofstream(path, std::ios::binary).write(bytes.data(), 5000);  // truncated
  ExpectOneClearLine(Tandem("generate -m " + path + " -p hi"), "invalid GGUF");
  std::ofstream(path, std::ios::binary) << "not a model at all";
  ExpectOneClearLine(Tandem("info -m " + path), "not a GGUF file");
  std::filesystem::remove(path);
}

TEST(CliTest, BadArgumentsFailClearly) {
  Result r = Tandem("generate -m " + kModel + " -p hi --top-p 7");
  ExpectOneClearLine(r, "top-p must be in (0, 1]");
  r = Tandem("generate -m " + kModel + " -p hi -n 500");
  ExpectOneClearLine(r, "exceed the context of 128 tokens");
  r = Tandem("generate -m " + kModel + " -p hi -n abc");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("-n"));
  r = Tandem("frobnicate");
  EXPECT_NE(r.exit_code, 0);
}

TEST(CliTest, InfoPrintsHyperParametersAndTensors) {
  Result r = Tandem("info -m " + kModel);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("n_layer 5"));
  EXPECT_THAT(r.out, HasSubstr("blk.4.ffn_down.weight"));
  EXPECT_THAT(r.out, HasSubstr("tokenizer.ggml.model"));
}

}  // namespace
}  // namespace tandem

namespace tandem {
namespace {

// Ctrl-C during `tandem run` takes the whole cluster down: no process is left behind.
TEST(CliTest, InterruptedRunLeavesNoProcessBehind) {
  const std::string model = "/tmp/tandem-sigint-test-" + std::to_string(::getpid()) + ".gguf";
  ASSERT_EQ(
      testing::RunTandem("make-model --n-embd 256 --n-layer 8 --n-head 4 --n-head-kv 2 --n-ff 1024"
                         " --n-ctx 4096 --type f32 --vocab-from " +
                         kModel + " -o " + model)
          .exit_code,
      0);
  const std::string log = model + ".log";
  cli::ProcessGroup group;
  const pid_t run = group.Spawn(
      "run", {TandemBinary(), "run", "-m", model, "--nodes", "2", "-n", "4000", "-c", "4096"}, log);
  // Wait until it is generating (the plan is printed), then interrupt.
  for (int i = 0; i < 300 && ReadFile(log).find("plan (epoch") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_THAT(ReadFile(log), HasSubstr("plan (epoch"));
  ::kill(run, SIGINT);
  int status = 0;
  for (int i = 0; i < 200 && ::waitpid(run, &status, WNOHANG) != run; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(WIFEXITED(status)) << ReadFile(log);
  EXPECT_EQ(WEXITSTATUS(status), 130);
  EXPECT_THAT(ReadFile(log), HasSubstr("interrupted"));
  // Nothing that mapped the model is still running (zombies have an empty command line).
  int left = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string cmdline = ReadFile(entry.path() / "cmdline");
    std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
    if (cmdline.find(model) != std::string::npos) ++left;
  }
  EXPECT_EQ(left, 0) << "processes using " << model << " are still running";
  std::filesystem::remove(model);
  std::filesystem::remove(log);
}

}  // namespace
}  // namespace tandem
