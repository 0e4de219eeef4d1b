#include "api/sse.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace tandem::api
