// GET /v1/cluster's conditional answers: the tag follows the body, and If-None-Match
// matches as RFC 9110 says (a list, weak tags, *).
#include "api/dashboard_routes.h"

#include <gtest/gtest.h>

namespace tandem::api {
namespace {

TEST(ClusterEtagTest, TheSameBodyHasTheSameTagAndAnotherBodyAnother) {
  const std::string a = ClusterEtag(R"({"ready":true})");
  EXPECT_EQ(a, ClusterEtag(R"({"ready":true})"));
  EXPECT_NE(a, ClusterEtag(R"({"ready":false})"));
  EXPECT_NE(a, ClusterEtag(""));
  ASSERT_GE(a.size(), 2u);
  EXPECT_EQ(a.front(), '"');  // a quoted entity tag
  EXPECT_EQ(a.back(), '"');
}

TEST(ClusterEtagTest, IfNoneMatchNamesTheTagInAListWeaklyOrWithAStar) {
  const std::string tag = ClusterEtag("body");
  EXPECT_TRUE(EtagMatches(tag, tag));
  EXPECT_TRUE(EtagMatches("\"other\", " + tag, tag));
  EXPECT_TRUE(EtagMatches("W/" + tag, tag));
  EXPECT_TRUE(EtagMatches("*", tag));
  EXPECT_FALSE(EtagMatches("", tag));
  EXPECT_FALSE(EtagMatches("\"other\"", tag));
  EXPECT_FALSE(EtagMatches(tag.substr(1, tag.size() - 2), tag));  // unquoted
  EXPECT_FALSE(EtagMatches(ClusterEtag("another body"), tag));
}

}  // namespace
}  // namespace tandem::api
