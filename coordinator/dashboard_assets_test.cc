#include "coordinator/dashboard_assets.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

namespace tandem {
namespace {

using ::testing::HasSubstr;

std::string ReadSource(const std::string& name) {
  std::ifstream in(std::string(TANDEM_SOURCE_DIR) + "/dashboard/" + name, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(DashboardAssetsTest, EveryFileIsEmbeddedByteForByteWithItsType) {
  for (const char* name : {"index.html", "dashboard.css", "dashboard.js"}) {
    const DashboardAsset* asset = FindDashboardAsset(std::string("/") + name);
    ASSERT_NE(asset, nullptr) << name;
    EXPECT_EQ(asset->body, ReadSource(name)) << name;
  }
  EXPECT_THAT(FindDashboardAsset("/index.html")->content_type, HasSubstr("text/html"));
  EXPECT_THAT(FindDashboardAsset("/dashboard.css")->content_type, HasSubstr("text/css"));
  EXPECT_THAT(FindDashboardAsset("/dashboard.js")->content_type, HasSubstr("javascript"));
}

TEST(DashboardAssetsTest, RootIsTheIndexAndUnknownPathsAreNotFound) {
  EXPECT_EQ(FindDashboardAsset("/"), FindDashboardAsset("/index.html"));
  EXPECT_EQ(FindDashboardAsset(""), FindDashboardAsset("/index.html"));
  EXPECT_EQ(FindDashboardAsset("/dashboard.js?v=2"), FindDashboardAsset("/dashboard.js"));
  EXPECT_EQ(FindDashboardAsset("/missing.js"), nullptr);
  EXPECT_EQ(FindDashboardAsset("/../CMakeLists.txt"), nullptr);
  EXPECT_GE(DashboardAssets().size(), 3u);
}

}  // namespace
}  // namespace tandem
