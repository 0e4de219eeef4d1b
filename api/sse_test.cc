#include "api/sse.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace tandem::api {
namespace {

TEST(Sse, OneDataEventPerChunkAndDoneAtTheEnd) {
  const std::string e = SseEvent({{"a", 1}, {"b", "x\ny"}});
  EXPECT_EQ(e.rfind("data: ", 0), 0u);
  EXPECT_EQ(e.substr(e.size() - 2), "\n\n");
  // JSON escapes newlines: the event is one line.
  EXPECT_EQ(e.find('\n'), e.size() - 2);
  EXPECT_EQ(nlohmann::json::parse(e.substr(6)), (nlohmann::json{{"a", 1}, {"b", "x\ny"}}));
  EXPECT_EQ(kSseDone, "data: [DONE]\n\n");
}

TEST(Sse, InvalidUtf8BecomesReplacementCharacters) {
  const std::string dumped = DumpJson(nlohmann::json("ok\xC3"));
  EXPECT_EQ(nlohmann::json::parse(dumped), "ok\xEF\xBF\xBD");
}

TEST(SseReader, SplitsEventsCutAnywhere) {
  const std::string stream = SseEvent({{"n", 1}}) + ": a comment\r\nevent: x\r\ndata: two\r\n" +
                             "data:lines\r\n\r\n" + std::string(kSseDone);
  // Every split point gives the same events.
  for (size_t cut = 0; cut <= stream.size(); ++cut) {
    SseReader reader;
    std::vector<std::string> events;
    auto add = [&](const std::string& d) { events.push_back(d); };
    ASSERT_TRUE(reader.Feed(std::string_view(stream).substr(0, cut), add));
    ASSERT_TRUE(reader.Feed(std::string_view(stream).substr(cut), add));
    ASSERT_EQ(events, (std::vector<std::string>{R"({"n":1})", "two\nlines", "[DONE]"})) << cut;
  }
}

TEST(SseReader, RefusesAnEndlessEvent) {
  SseReader reader;
  const std::string chunk(1 << 20, 'x');
  bool ok = true;
  for (int i = 0; i < 5 && ok; ++i) ok = reader.Feed(chunk, [](const std::string&) {});
  EXPECT_FALSE(ok);
}

}  // namespace
}  // namespace tandem::api
