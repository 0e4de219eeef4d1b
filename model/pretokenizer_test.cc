#include "model/pretokenizer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "model/byte_level.h"
#include "model/split_regex.h"
#include "model/unicode.h"

namespace tandem {
namespace {

using ::testing::ElementsAre;

std::vector<std::string> SplitWith(const std::vector<std::string>& patterns,
                                   const std::string& text) {
  auto pre = PreTokenizer::Create(patterns);
  EXPECT_TRUE(pre.ok()) << pre.status();
  return pre.ok() ? pre->Split(text) : std::vector<std::string>{};
}

std::vector<std::string> SplitWithPreset(const std::string& name, const std::string& text) {
  auto preset = BpePresetForName(name);
  EXPECT_TRUE(preset.ok()) << preset.status();
  return preset.ok() ? SplitWith(preset->patterns, text) : std::vector<std::string>{};
}

TEST(SplitRegexTest, AlternationIsLeftmostFirstNotLongest) {
  EXPECT_THAT(SplitWith({"a|ab"}, "ab"), ElementsAre("a", "b"));
  EXPECT_THAT(SplitWith({"ab|a"}, "ab"), ElementsAre("ab"));
}

TEST(SplitRegexTest, GreedyQuantifiersBacktrackIntoLookahead) {
  // \s+(?!\S) leaves the last space of a run for the following word.
  EXPECT_THAT(SplitWith({R"(\s+(?!\S)|\S+)"}, "a   b"), ElementsAre("a", "  ", " ", "b"));
}

TEST(SplitRegexTest, CountedRepeatsAndGroups) {
  EXPECT_THAT(SplitWith({R"(\p{N}{1,3})"}, "12345"), ElementsAre("123", "45"));
  EXPECT_THAT(SplitWith({"(?:ab)+"}, "ababx"), ElementsAre("abab", "x"));
  EXPECT_THAT(SplitWith({"(ab){2}"}, "abababab"), ElementsAre("abab", "abab"));
}

TEST(SplitRegexTest, CaseInsensitiveGroupFoldsAscii) {
  EXPECT_THAT(SplitWith({"(?i:'s)"}, "it'S"), ElementsAre("it", "'S"));
}

TEST(SplitRegexTest, DollarMatchesOnlyAtTheEndOfTheRange) {
  EXPECT_THAT(SplitWith({R"(\s+$)"}, "a  b  "), ElementsAre("a  b", "  "));
  // Each piece from an earlier pattern is searched as a whole text of its own.
  EXPECT_THAT(SplitWith({"b", R"(\s+$)"}, "a  b"), ElementsAre("a", "  ", "b"));
}

TEST(SplitRegexTest, CategoriesAndNonAsciiWhitespace) {
  // U+3000 is whitespace: the regex sees it as \s, the output keeps it.
  EXPECT_THAT(SplitWith({R"(\p{L}+|\s+)"}, "héllo\xE3\x80\x80мир"),
              ElementsAre("héllo", "\xE3\x80\x80", "мир"));
  EXPECT_THAT(SplitWith({R"(\p{P}+)"}, "a!?b"), ElementsAre("a", "!?", "b"));
}

TEST(SplitRegexTest, RejectsUnsupportedSyntax) {
  for (const char* bad : {"(", "a)", "[a", R"(\p{X})", "*", "a{3,1}", R"(\w)", "(?<=a)", "a*?"}) {
    EXPECT_FALSE(SplitRegex::Compile(bad).ok()) << bad;
  }
}

TEST(PreTokenizerTest, Llama3SplitsDigitsInThrees) {
  EXPECT_THAT(SplitWithPreset("llama-bpe", "Hello world 1234567"),
              ElementsAre("Hello", " world", " ", "123", "456", "7"));
  EXPECT_THAT(SplitWithPreset("llama-bpe", "I'VE\n\n  x"),
              ElementsAre("I", "'VE", "\n\n", " ", " x"));
}

TEST(PreTokenizerTest, Gpt2ContractionsAreLowercaseOnly) {
  EXPECT_THAT(SplitWithPreset("gpt-2", "I've I'VE"), ElementsAre("I", "'ve", " I", "'", "VE"));
}

TEST(PreTokenizerTest, MalformedUtf8BecomesReplacementCharacter) {
  EXPECT_THAT(SplitWithPreset("gpt-2", "a\xFF"), ElementsAre("a", "\xEF\xBF\xBD"));
}

TEST(PreTokenizerTest, UnknownNameIsAnError) {
  EXPECT_FALSE(BpePresetForName("no-such-tokenizer").ok());
  EXPECT_TRUE(BpePresetForName("").ok());
}

TEST(UnicodeTest, Categories) {
  EXPECT_TRUE(CodepointFlagsOf('A') & kCpLetter);
  EXPECT_TRUE(CodepointFlagsOf('7') & kCpNumber);
  EXPECT_TRUE(CodepointFlagsOf('!') & kCpPunctuation);
  EXPECT_TRUE(CodepointFlagsOf('$') & kCpSymbol);
  EXPECT_TRUE(CodepointFlagsOf(0x3000) & kCpWhitespace);
  EXPECT_TRUE(CodepointFlagsOf(0x0E9) & kCpLetter);
  EXPECT_TRUE(CodepointFlagsOf(0x4E00) & kCpLetter);
  EXPECT_TRUE(CodepointFlagsOf(0x0301) & kCpAccentMark);
  EXPECT_FALSE(CodepointFlagsOf(0x1C) & kCpWhitespace);  // not White_Space
}

TEST(UnicodeTest, CaseAndDecomposition) {
  EXPECT_EQ(CodepointToLower(0xC4), 0xE4u);             // Ä -> ä
  EXPECT_EQ(CodepointToLower(0x41F), 0x43Fu);           // П -> п
  EXPECT_EQ(CodepointNfdFirst(0xFC), uint32_t{'u'});    // ü -> u
  EXPECT_EQ(CodepointNfdFirst(0x1EED), uint32_t{'u'});  // ử -> u
}

TEST(UnicodeTest, Utf8RoundTripAndLenientDecoding) {
  const std::string text = "aé€😀";
  std::string back;
  for (uint32_t cpt : DecodeUtf8(text)) AppendUtf8(cpt, &back);
  EXPECT_EQ(back, text);
  EXPECT_THAT(DecodeUtf8("\x80x\xE2\x82"), ElementsAre(0xFFFDu, uint32_t{'x'}, 0xFFFDu, 0xFFFDu));
}

TEST(ByteLevelTest, MapsEveryByteAndBack) {
  EXPECT_EQ(ByteLevelEncode(" \n"), "\xC4\xA0\xC4\x8A");  // "ĠĊ"
  EXPECT_EQ(ByteLevelEncode("a"), "a");
  for (int b = 0; b < 256; ++b) {
    size_t offset = 0;
    const std::string& text = ByteLevelEncodeByte(static_cast<uint8_t>(b));
    EXPECT_EQ(ByteLevelDecodeCodepoint(DecodeUtf8(text, &offset)), b);
  }
  EXPECT_EQ(ByteLevelDecodeCodepoint(0x2581), -1);
}

}  // namespace
}  // namespace tandem
