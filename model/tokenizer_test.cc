#include "model/tokenizer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "model/gguf.h"
#include "model/gguf_writer.h"

namespace tandem {
namespace {

constexpr char kCaseSeparator[] = "\n__ggml_vocab_test__\n";

std::string ReadFileOrDie(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "missing test data: " << path;
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// llama.cpp's .inp/.detok format: every case is followed by the separator.
std::vector<std::string> SplitCases(const std::string& data) {
  std::vector<std::string> cases;
  size_t pos = 0;
  while (pos < data.size()) {
    const size_t sep = data.find(kCaseSeparator, pos);
    if (sep == std::string::npos) break;
    cases.push_back(data.substr(pos, sep - pos));
    pos = sep + sizeof(kCaseSeparator) - 1;
  }
  return cases;
}

// .out: one line per case, each id preceded by one space.
std::vector<std::vector<TokenId>> ParseIds(const std::string& data) {
  std::vector<std::vector<TokenId>> lines;
  std::vector<std::string> rows = absl::StrSplit(data, '\n');
  if (!rows.empty() && rows.back().empty()) rows.pop_back();
  for (const std::string& row : rows) {
    std::vector<TokenId>& ids = lines.emplace_back();
    std::istringstream in(row);
    TokenId id;
    while (in >> id) ids.push_back(id);
  }
  return lines;
}

std::unique_ptr<GgufFile> OpenOrDie(const std::string& path) {
  auto file = GgufFile::Open(path);
  EXPECT_TRUE(file.ok()) << path << ": " << file.status();
  return file.ok() ? std::move(*file) : nullptr;
}

std::unique_ptr<Tokenizer> LoadOrDie(const GgufFile& file) {
  auto tokenizer = Tokenizer::FromGguf(file);
  EXPECT_TRUE(tokenizer.ok()) << file.path() << ": " << tokenizer.status();
  return tokenizer.ok() ? std::move(*tokenizer) : nullptr;
}

std::string VocabPath(const std::string& name) {
  return absl::StrCat(TANDEM_SHARED_DIR, "/tokenizer/ggml-vocab-", name, ".gguf");
}

class VocabTest : public ::testing::TestWithParam<std::string> {};

// Every case of llama.cpp's test-tokenizer-0 data: encode must give the .out ids, and
// decoding those ids must give the .detok text.
TEST_P(VocabTest, MatchesLlamaCpp) {
  const std::string name = GetParam();
  const std::string path = VocabPath(name);
  const std::vector<std::string> inputs = SplitCases(ReadFileOrDie(path + ".inp"));
  const std::vector<std::vector<TokenId>> expected_ids = ParseIds(ReadFileOrDie(path + ".out"));
  const std::vector<std::string> expected_text = SplitCases(ReadFileOrDie(path + ".detok"));
  ASSERT_EQ(inputs.size(), 46u);
  ASSERT_EQ(expected_ids.size(), inputs.size());
  ASSERT_EQ(expected_text.size(), inputs.size());
  auto file = OpenOrDie(path);
  ASSERT_NE(file, nullptr);
  auto tokenizer = LoadOrDie(*file);
  ASSERT_NE(tokenizer, nullptr);

  int encode_pass = 0, detok_pass = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const std::vector<TokenId> ids =
        tokenizer->Encode(inputs[i], /*add_special=*/false, /*parse_special=*/false);
    if (ids == expected_ids[i]) {
      ++encode_pass;
    } else {
      ADD_FAILURE() << name << " case " << i << " encode of \"" << inputs[i]
                    << "\"\n  got:  " << absl::StrJoin(ids, " ")
                    << "\n  want: " << absl::StrJoin(expected_ids[i], " ");
    }
    const std::string text =
        tokenizer->Decode(expected_ids[i], /*remove_special=*/false, /*unparse_special=*/false);
    if (text == expected_text[i]) {
      ++detok_pass;
    } else {
      ADD_FAILURE() << name << " case " << i << " decode\n  got:  \"" << text << "\"\n  want: \""
                    << expected_text[i] << "\"";
    }
  }
  std::printf("%s: encode %d/%zu, detok %d/%zu\n", name.c_str(), encode_pass, inputs.size(),
              detok_pass, inputs.size());
  EXPECT_EQ(encode_pass, static_cast<int>(inputs.size()));
  EXPECT_EQ(detok_pass, static_cast<int>(inputs.size()));
}

INSTANTIATE_TEST_SUITE_P(Vocabs, VocabTest,
                         ::testing::Values("llama-spm", "phi-3", "gpt-2", "llama-bpe", "qwen2",
                                           "deepseek-llm", "deepseek-coder", "falcon", "starcoder",
                                           "mpt", "refact", "bert-bge"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string name = info.param;
                           for (char& c : name) {
                             if (c == '-') c = '_';
                           }
                           return name;
                         });

class Stories260KTest : public ::testing::Test {
 protected:
  void SetUp() override {
    file_ = OpenOrDie(TANDEM_SHARED_DIR "/models/stories260K-f32.gguf");
    ASSERT_NE(file_, nullptr);
    tokenizer_ = LoadOrDie(*file_);
    ASSERT_NE(tokenizer_, nullptr);
  }
  std::unique_ptr<GgufFile> file_;
  std::unique_ptr<Tokenizer> tokenizer_;
};

TEST_F(Stories260KTest, EncodesPromptsWithBos) {
  using ::testing::ElementsAre;
  EXPECT_THAT(tokenizer_->Encode("Once upon a time", true, false),
              ElementsAre(1, 403, 407, 261, 378));
  EXPECT_THAT(tokenizer_->Encode("The little dog", true, false),
              ElementsAre(1, 291, 376, 400, 428));
  EXPECT_THAT(tokenizer_->Encode("Lily wanted to", true, false),
              ElementsAre(1, 317, 391, 266, 267));
  EXPECT_EQ(tokenizer_->bos(), 1);
  EXPECT_EQ(tokenizer_->eos(), 2);
  EXPECT_EQ(tokenizer_->n_vocab(), 512);
  EXPECT_TRUE(tokenizer_->IsEog(2));
  EXPECT_FALSE(tokenizer_->IsEog(1));
}

// Reference greedy continuations (stories260K-f32.json): the pieces concatenate to
// greedy_text; llama_detokenize additionally drops the SPM prefix space of the first token.
TEST_F(Stories260KTest, DecodesReferenceContinuations) {
  const std::vector<TokenId> p1 = {432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338,
                                   401, 396, 267, 337, 410, 408, 419, 292, 411, 322, 265, 282,
                                   295, 433, 426, 385, 328, 432, 358, 394, 261, 370, 432, 352,
                                   266, 268, 388, 426, 338, 391, 266, 267, 337, 335, 312, 432};
  const std::string p1_text =
      ", there was a little girl named Lily. She loved to play outside in the park. One day, "
      "she saw a big, red ball. She wanted to play with it,";
  const std::vector<TokenId> p2 = {286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396,
                                   267, 337, 335, 311, 267, 422, 419, 269, 311, 267, 422, 419,
                                   426, 385, 328, 432, 358, 394, 261, 370, 268, 414, 444, 335,
                                   261, 370, 268, 414, 444, 426, 359, 413, 286, 261, 370, 432};
  const std::string p2_text =
      " was a little girl named Lily. She loved to play with her toys and her toys. One day, "
      "she saw a big box with a big box. It was a big,";
  for (const auto& [ids, want] : {std::pair(p1, p1_text), std::pair(p2, p2_text)}) {
    std::string pieces;
    for (TokenId id : ids) pieces += tokenizer_->TokenToPiece(id, false);
    EXPECT_EQ(pieces, want);
    const std::string expected_decode = want[0] == ' ' ? want.substr(1) : want;
    EXPECT_EQ(tokenizer_->Decode(ids, false, false), expected_decode);
  }
  // A leading BOS renders as nothing but still uses up the prefix-space removal.
  std::vector<TokenId> with_prompt = {1, 403, 407, 261, 378};
  with_prompt.insert(with_prompt.end(), p1.begin(), p1.end());
  EXPECT_EQ(tokenizer_->Decode(with_prompt, true, false), " Once upon a time" + p1_text);
  EXPECT_EQ(tokenizer_->Decode(with_prompt, false, true), "<s> Once upon a time" + p1_text);
}

TEST(TokenizerSpecialTest, ParseSpecialSplitsControlTokens) {
  auto file = OpenOrDie(VocabPath("llama-bpe"));
  ASSERT_NE(file, nullptr);
  auto tokenizer = LoadOrDie(*file);
  ASSERT_NE(tokenizer, nullptr);
  const std::string text = "<|begin_of_text|>Hello<|eot_id|>";
  const std::vector<TokenId> parsed = tokenizer->Encode(text, false, true);
  ASSERT_EQ(parsed.size(), 3u);
  EXPECT_EQ(parsed[0], 128000);
  EXPECT_TRUE(tokenizer->IsEog(parsed[2]));
  EXPECT_EQ(tokenizer->Decode(parsed, false, true), text);
  EXPECT_EQ(tokenizer->Decode(parsed, false, false), "Hello");
  // Without parse_special the control texts are ordinary text.
  EXPECT_GT(tokenizer->Encode(text, false, false).size(), 3u);
  // llama-bpe adds BOS by default (no add_bos_token key in the file).
  EXPECT_EQ(tokenizer->Encode("Hello", true, false).front(), 128000);
  EXPECT_EQ(tokenizer->bos(), 128000);
  EXPECT_EQ(tokenizer->eos(), 128001);
}

// Large inputs must stay fast: merges go through a priority queue, never rescans.
TEST(TokenizerPerformanceTest, LongInputsAndLargeVocab) {
  using Clock = std::chrono::steady_clock;
  const auto load_start = Clock::now();
  auto file = OpenOrDie(VocabPath("qwen2"));
  ASSERT_NE(file, nullptr);
  const auto build_start = Clock::now();
  auto tokenizer = LoadOrDie(*file);
  ASSERT_NE(tokenizer, nullptr);
  const double load_ms =
      std::chrono::duration<double, std::milli>(Clock::now() - load_start).count();
  const double build_ms =
      std::chrono::duration<double, std::milli>(Clock::now() - build_start).count();

  std::string text;
  const std::string chunk = "Hello, y'all! How are you 😁 ?我想在apple工作1314151天～ ";
  while (text.size() < 10000) text += chunk;
  const std::string one_word(10000, 'a');
  const std::string spaces(10000, ' ');
  const auto encode_start = Clock::now();
  for (const std::string* input : std::vector<const std::string*>{&text, &one_word, &spaces}) {
    const std::vector<TokenId> ids = tokenizer->Encode(*input, false, false);
    EXPECT_FALSE(ids.empty());
    EXPECT_EQ(tokenizer->Decode(ids, false, false), *input);
  }
  const double encode_ms =
      std::chrono::duration<double, std::milli>(Clock::now() - encode_start).count();
  std::printf(
      "qwen2 (%d tokens): GGUF open + tokenizer %.1f ms (tokenizer alone %.1f ms), "
      "3 x 10k-char encode+decode %.1f ms\n",
      tokenizer->n_vocab(), load_ms, build_ms, encode_ms);
  // Timings are printed, not asserted: speed is for benchmarks, and CI machines are noisy.
}

// A small vocab written with GgufWriter, for behaviour the llama.cpp data does not cover.
class SyntheticVocabTest : public ::testing::Test {
 protected:
  static GgufWriter SpmWriter(const std::string& model = "llama") {
    GgufWriter w;
    w.AddMetadata("tokenizer.ggml.model", GgufValue::String(model));
    // ids:               0        1      2       3         4         5      6      7
    w.AddMetadata("tokenizer.ggml.tokens",
                  GgufValue::StringArray({"<unk>", "<s>", "</s>", "<0x61>", "<0x62>", "\u2581",
                                          "\u2581a", "<|user|>"}));
    w.AddMetadata("tokenizer.ggml.scores",
                  GgufValue::Float32Array({0, 0, 0, 0, 0, -1.0f, -0.5f, 0}));
    w.AddMetadata("tokenizer.ggml.token_type",
                  GgufValue::IntArray(GgufValueType::kInt32, {2, 3, 3, 6, 6, 1, 1, 4}));
    return w;
  }

  absl::StatusOr<std::unique_ptr<Tokenizer>> Load(const GgufWriter& writer) {
    const std::string path = ::testing::TempDir() + "/tandem_tokenizer_test_" +
                             std::to_string(::getpid()) + "_" + std::to_string(counter_++) +
                             ".gguf";
    EXPECT_TRUE(writer.WriteFile(path).ok());
    auto file = GgufFile::Open(path);
    std::remove(path.c_str());
    if (!file.ok()) return file.status();
    file_ = std::move(*file);
    return Tokenizer::FromGguf(*file_);
  }

  std::unique_ptr<GgufFile> file_;
  int counter_ = 0;
};

TEST_F(SyntheticVocabTest, SpmByteFallbackSpecialsAndEos) {
  GgufWriter w = SpmWriter();
  w.AddMetadata("tokenizer.ggml.add_eos_token", GgufValue::Bool(true));
  auto tokenizer = Load(w);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  Tokenizer& t = **tokenizer;
  using ::testing::ElementsAre;
  // "b" is not a token, so it falls back to <0x62>.
  EXPECT_THAT(t.Encode("ab", true, false), ElementsAre(1, 6, 4, 2));
  // llama.cpp keeps the prefix space when it removes a leading BOS.
  EXPECT_EQ(t.Decode({1, 6, 4, 2}, true, false), " ab");
  EXPECT_EQ(t.Decode({6, 4}, true, false), "ab");
  // Control text is plain text unless parse_special; user-defined tokens always split, and
  // the text after a special token gets its own prefix space.
  EXPECT_THAT(t.Encode("a</s>a", false, true), ElementsAre(6, 2, 6));
  EXPECT_THAT(t.Encode("a<|user|>a", false, false), ElementsAre(6, 7, 6));
  EXPECT_EQ(t.TokenToPiece(2, false), "");
  EXPECT_EQ(t.TokenToPiece(2, true), "</s>");
  EXPECT_EQ(t.TokenToPiece(7, false), "<|user|>");
  EXPECT_EQ(t.TokenToPiece(3, false), "a");
  EXPECT_EQ(t.TokenToPiece(99, true), "");
  EXPECT_TRUE(t.IsEog(2));
}

TEST_F(SyntheticVocabTest, ExplicitNoneSpecialIds) {
  GgufWriter w = SpmWriter();
  w.AddMetadata("tokenizer.ggml.bos_token_id", GgufValue::Int(GgufValueType::kUint32, 0xFFFFFFFF));
  w.AddMetadata("tokenizer.ggml.eos_token_id", GgufValue::Int(GgufValueType::kUint32, 2));
  auto tokenizer = Load(w);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  EXPECT_EQ((*tokenizer)->bos(), -1);
  EXPECT_EQ((*tokenizer)->eos(), 2);
  EXPECT_THAT((*tokenizer)->Encode("a", true, false), ::testing::ElementsAre(6));
}

TEST_F(SyntheticVocabTest, RejectsBrokenMetadata) {
  GgufWriter no_model;
  no_model.AddMetadata("tokenizer.ggml.tokens", GgufValue::StringArray({"a"}));
  EXPECT_FALSE(Load(no_model).ok());

  GgufWriter unknown_model = SpmWriter("rwkv");
  EXPECT_EQ(Load(unknown_model).status().code(), absl::StatusCode::kUnimplemented);

  GgufWriter short_scores = SpmWriter();
  short_scores.AddMetadata("tokenizer.ggml.scores", GgufValue::Float32Array({0}));
  EXPECT_FALSE(Load(short_scores).ok());

  GgufWriter bpe_without_merges;
  bpe_without_merges.AddMetadata("tokenizer.ggml.model", GgufValue::String("gpt2"));
  bpe_without_merges.AddMetadata("tokenizer.ggml.tokens", GgufValue::StringArray({"a", "b"}));
  EXPECT_EQ(Load(bpe_without_merges).status().code(), absl::StatusCode::kNotFound);

  GgufWriter unknown_pre = bpe_without_merges;
  unknown_pre.AddMetadata("tokenizer.ggml.merges", GgufValue::StringArray({"a b"}));
  unknown_pre.AddMetadata("tokenizer.ggml.pre", GgufValue::String("no-such-pre"));
  EXPECT_EQ(Load(unknown_pre).status().code(), absl::StatusCode::kUnimplemented);
}

}  // namespace
}  // namespace tandem
