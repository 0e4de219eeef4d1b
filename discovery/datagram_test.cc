#include "discovery/datagram.h"

#include <gtest/gtest.h>

#include <string>

#include "discovery/finder.h"

namespace tandem::discovery {
namespace {

Announcement SomeAnnouncement() {
  Announcement a;
  a.nonce = 0x0102030405060708ull;
  a.cluster_name = "home-lab_1.x";
  a.port = 7070;
  a.boot_id = 42;
  a.model_tag = ModelTag("ab");
  return a;
}

std::string Bytes(const std::vector<uint8_t>& v) { return std::string(v.begin(), v.end()); }

TEST(DatagramTest, ProbeRoundTripsWithTheDocumentedLayout) {
  auto bytes = EncodeProbe({0x1122334455667788ull, "tandem"});
  ASSERT_TRUE(bytes.ok());
  ASSERT_EQ(bytes->size(), kHeaderBytes + 6);
  EXPECT_EQ(Bytes(*bytes).substr(0, 4), "TNDD");
  EXPECT_EQ((*bytes)[4], kVersion);
  EXPECT_EQ((*bytes)[5], 1);
  EXPECT_EQ((*bytes)[8], 0x11);  // big-endian nonce
  EXPECT_EQ((*bytes)[15], 0x88);
  EXPECT_EQ((*bytes)[16], 6);
  auto d = ParseDatagram(Bytes(*bytes));
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->kind, Kind::kProbe);
  EXPECT_EQ(d->probe.nonce, 0x1122334455667788ull);
  EXPECT_EQ(d->probe.cluster_name, "tandem");
}

TEST(DatagramTest, AnnouncementRoundTrips) {
  Announcement a = SomeAnnouncement();
  a.security = Security::kTls;
  a.ca_hash[7] = 9;
  auto bytes = EncodeAnnouncement(a);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  EXPECT_EQ(bytes->size(), kHeaderBytes + a.cluster_name.size() + kAnnouncementTailBytes);
  auto d = ParseDatagram(Bytes(*bytes));
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_EQ(d->kind, Kind::kAnnouncement);
  const Announcement& b = d->announcement;
  EXPECT_EQ(b.nonce, a.nonce);
  EXPECT_EQ(b.cluster_name, a.cluster_name);
  EXPECT_EQ(b.port, 7070);
  EXPECT_EQ(b.boot_id, 42u);
  EXPECT_EQ(b.model_tag, a.model_tag);
  EXPECT_EQ(b.security, Security::kTls);
  EXPECT_EQ(b.ca_hash, a.ca_hash);
}

TEST(DatagramTest, EncodingRefusesInvalidFields) {
  Announcement a = SomeAnnouncement();
  a.port = 0;
  EXPECT_FALSE(EncodeAnnouncement(a).ok());
  a = SomeAnnouncement();
  a.boot_id = 0;
  EXPECT_FALSE(EncodeAnnouncement(a).ok());
  a = SomeAnnouncement();
  a.ca_hash[0] = 1;  // plain text with a CA hash
  EXPECT_FALSE(EncodeAnnouncement(a).ok());
  a = SomeAnnouncement();
  a.security = Security::kTls;  // TLS without one
  EXPECT_FALSE(EncodeAnnouncement(a).ok());
  EXPECT_FALSE(EncodeProbe({1, ""}).ok());
  EXPECT_FALSE(EncodeProbe({1, std::string(65, 'a')}).ok());
  EXPECT_FALSE(EncodeProbe({1, "a b"}).ok());
  EXPECT_FALSE(EncodeProbe({1, "caf\xc3\xa9"}).ok());
  EXPECT_TRUE(EncodeProbe({1, std::string(64, 'a')}).ok());
}

// Every truncation, every extra byte and every single-byte change of a valid announcement
// is either refused with a reason or parsed to fields that pass the same checks.
TEST(DatagramTest, EveryTruncationAndExtensionIsRefused) {
  const std::string good = Bytes(*EncodeAnnouncement(SomeAnnouncement()));
  for (size_t n = 0; n < good.size(); ++n) {
    auto d = ParseDatagram(good.substr(0, n));
    EXPECT_FALSE(d.ok()) << "length " << n;
  }
  auto longer = ParseDatagram(good + std::string(1, '\0'));
  ASSERT_FALSE(longer.ok());
  EXPECT_NE(longer.status().message().find("after an announcement"), std::string::npos)
      << longer.status();
  const std::string probe = Bytes(*EncodeProbe({5, "tandem"}));
  EXPECT_FALSE(ParseDatagram(probe + "x").ok());
  EXPECT_FALSE(ParseDatagram(std::string(kMaxDatagramBytes + 1, 'T')).ok());
}

TEST(DatagramTest, BadFieldsAreNamed) {
  const std::string good = Bytes(*EncodeAnnouncement(SomeAnnouncement()));
  auto with = [&](size_t at, uint8_t v) {
    std::string b = good;
    b[at] = static_cast<char>(v);
    auto d = ParseDatagram(b);
    return d.ok() ? std::string("ok") : std::string(d.status().message());
  };
  EXPECT_NE(with(0, 'X').find("magic"), std::string::npos);
  EXPECT_NE(with(4, 2).find("version 2"), std::string::npos);
  EXPECT_NE(with(5, 3).find("unknown kind 3"), std::string::npos);
  EXPECT_NE(with(7, 1).find("reserved"), std::string::npos);
  EXPECT_NE(with(16, 0).find("cluster name length 0"), std::string::npos);
  EXPECT_NE(with(16, 200).find("cluster name length 200"), std::string::npos);
  EXPECT_NE(with(17, ' ').find("character"), std::string::npos);
  const size_t tail = kHeaderBytes + SomeAnnouncement().cluster_name.size();
  std::string zero_port = good;
  zero_port[tail] = zero_port[tail + 1] = 0;
  EXPECT_NE(std::string(ParseDatagram(zero_port).status().message()).find("port 0"),
            std::string::npos);
  EXPECT_NE(with(tail + 2 + 8 + 32, 7).find("unknown security 7"), std::string::npos);
  EXPECT_NE(with(tail + 2 + 8 + 32 + 1, 1).find("CA hash on a plain-text"), std::string::npos);
  EXPECT_NE(with(tail + 2 + 8 + 32, 1).find("TLS cluster without"), std::string::npos);
}

TEST(DatagramTest, ModelTagDependsOnTheFingerprintOnly) {
  EXPECT_EQ(ModelTag("00ff"), ModelTag("00ff"));
  EXPECT_NE(ModelTag("00ff"), ModelTag("00fe"));
}

TEST(DatagramTest, MismatchNamesWhatDiffers) {
  FindOptions o;
  o.cluster_name = "home-lab_1.x";
  o.model_tag = ModelTag("ab");
  Announcement a = SomeAnnouncement();
  EXPECT_EQ(Mismatch(a, o), "");
  o.cluster_name = "other";
  EXPECT_NE(Mismatch(a, o).find("cluster 'home-lab_1.x'"), std::string::npos);
  o.cluster_name = a.cluster_name;
  o.model_tag = ModelTag("cd");
  EXPECT_NE(Mismatch(a, o).find("another model"), std::string::npos);
  o.model_tag = a.model_tag;
  a.security = Security::kTls;
  a.ca_hash[0] = 1;
  EXPECT_NE(Mismatch(a, o).find("join token"), std::string::npos);
  Digest ca{};
  ca[0] = 1;
  o.ca_hash = ca;
  EXPECT_EQ(Mismatch(a, o), "");
  (*o.ca_hash)[0] = 2;
  EXPECT_NE(Mismatch(a, o).find("a CA other"), std::string::npos);
  a.security = Security::kPlainText;
  a.ca_hash = {};
  EXPECT_NE(Mismatch(a, o).find("plain text"), std::string::npos);
}

}  // namespace
}  // namespace tandem::discovery
