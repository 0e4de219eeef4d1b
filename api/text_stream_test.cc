#include "api/text_stream.h"

#include <gtest/gtest.h>

namespace tandem::api {
namespace {

// Feeds pieces and returns everything emitted, as a client would see it.
std::string FeedAll(TextStream& s, const std::vector<std::string>& pieces) {
  std::string out;
  for (const auto& p : pieces) {
    out += s.Feed(p);
    if (s.stopped()) return out;
  }
  return out + s.Finish();
}

TEST(TextStream, PassesTextWithoutStops) {
  TextStream s({});
  EXPECT_EQ(s.Feed("Once"), "Once");
  EXPECT_EQ(s.Feed(" upon"), " upon");
  EXPECT_EQ(s.Finish(), "");
}

TEST(TextStream, CutsAtAStopStringSplitAcrossPieces) {
  TextStream s({"END"});
  EXPECT_EQ(s.Feed("abc E"), "abc ");  // "E" may begin "END": held back
  EXPECT_EQ(s.Feed("N"), "");
  EXPECT_FALSE(s.stopped());
  EXPECT_EQ(s.Feed("D and more"), "");
  EXPECT_TRUE(s.stopped());
  EXPECT_EQ(s.Feed("later"), "");
}

TEST(TextStream, ReleasesAHeldTailThatDidNotStop) {
  TextStream s({"END"});
  EXPECT_EQ(s.Feed("EN"), "");
  EXPECT_EQ(s.Feed("X"), "ENX");
  EXPECT_EQ(s.Feed("E"), "");
  EXPECT_EQ(s.Finish(), "E");
}

TEST(TextStream, TheEarliestOfSeveralStopsWins) {
  TextStream s({"lazy", "fox"});
  EXPECT_EQ(FeedAll(s, {"the quick brown fox jumps over the lazy dog"}), "the quick brown ");
}

TEST(TextStream, NeverSplitsAUtf8Character) {
  const std::string euro = "\xE2\x82\xAC";  // €
  TextStream s({});
  EXPECT_EQ(s.Feed("a" + euro.substr(0, 1)), "a");
  EXPECT_EQ(s.Feed(euro.substr(1, 1)), "");
  EXPECT_EQ(s.Feed(euro.substr(2)), euro);
  // A character the model never finished becomes U+FFFD at the end.
  EXPECT_EQ(s.Feed("\xF0\x9F"), "");
  EXPECT_EQ(s.Finish(), "\xEF\xBF\xBD");
}

TEST(TextStream, StopStringsMatchBytesAcrossManyPieces) {
  // Every split of the text into two pieces gives the same answer.
  const std::string text = "one, two\n\nthree";
  for (size_t cut = 0; cut <= text.size(); ++cut) {
    TextStream s({"\n\n"});
    EXPECT_EQ(FeedAll(s, {text.substr(0, cut), text.substr(cut)}), "one, two") << cut;
  }
}

TEST(CompleteUtf8Prefix, FindsTheBoundary) {
  EXPECT_EQ(CompleteUtf8Prefix("abc"), 3u);
  EXPECT_EQ(CompleteUtf8Prefix("ab\xC3"), 2u);
  EXPECT_EQ(CompleteUtf8Prefix("ab\xC3\xA9"), 4u);
  EXPECT_EQ(CompleteUtf8Prefix("\xF0\x9F\x98"), 0u);
  EXPECT_EQ(CompleteUtf8Prefix("\x80\x80"), 2u);  // stray continuation bytes: not waited for
  EXPECT_EQ(CompleteUtf8Prefix(""), 0u);
}

}  // namespace
}  // namespace tandem::api
