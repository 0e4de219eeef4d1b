// NODES.json parsing: every malformed input is an error naming the problem, never an
// exception (the cases below once escaped as exceptions; fuzzing found them).
#include "cli/node_profiles.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace tandem::cli {
namespace {

using ::testing::HasSubstr;

TEST(ParseNodeProfiles, NumberOutOfRangeIsAnErrorNotAnException) {
  auto nodes = ParseNodeProfiles(
      R"({"nodes": [{"name": "a", "memory_gib": 1e400, "bandwidth_gbs": 1, "gflops": 1,
          "rtt_ms": 0, "link_gbps": 1}]})",
      "nodes.json");
  ASSERT_FALSE(nodes.ok());
  EXPECT_THAT(std::string(nodes.status().message()), HasSubstr("nodes.json: not valid JSON"));
  EXPECT_THAT(std::string(nodes.status().message()), HasSubstr("number overflow"));
}

TEST(ParseNodeProfiles, GoodFileParses) {
  auto nodes = ParseNodeProfiles(
      R"({"nodes": [{"name": "desk", "memory_gib": 16, "bandwidth_gbs": 40, "gflops": 300,
          "rtt_ms": 0.5, "link_gbps": 1}]})",
      "nodes.json");
  ASSERT_TRUE(nodes.ok()) << nodes.status();
  ASSERT_EQ(nodes->size(), 1u);
  EXPECT_EQ((*nodes)[0].name, "desk");
  EXPECT_EQ((*nodes)[0].memory_bytes, 16ull << 30);
}

}  // namespace
}  // namespace tandem::cli
