#include "partition/units.h"

#include "gtest/gtest.h"

namespace tandem::partition {
namespace {

TEST(FormatGiBTest, OneDecimalInGiB) {
  EXPECT_EQ(FormatGiB(0), "0.0 GiB");
  EXPECT_EQ(FormatGiB(uint64_t{38} << 30), "38.0 GiB");
  EXPECT_EQ(FormatGiB(static_cast<uint64_t>(30.14 * kBytesPerGiB)), "30.1 GiB");
  EXPECT_EQ(FormatGiB(static_cast<uint64_t>(0.06 * kBytesPerGiB)), "0.1 GiB");
}

TEST(FormatGiBTest, SmallSizesKeepTheirNumbers) {
  EXPECT_EQ(FormatGiB(1200 * 1024), "1.2 MiB");
  EXPECT_EQ(FormatGiB(300), "0.3 KiB");
}

}  // namespace
}  // namespace tandem::partition
