#include "security/pki.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

#include "security/join_issuer.h"
#include "security/join_token.h"
#include "security/revocation.h"

namespace tandem::security {
namespace {

class PkiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/tandem-pki-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_F(PkiTest, CreatesThenReloadsTheSameCa) {
  auto first = ClusterCa::OpenOrCreate(dir_ + "/state");
  ASSERT_TRUE(first.ok()) << first.status();
  auto again = ClusterCa::OpenOrCreate(dir_ + "/state");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ((*first)->ca_cert_pem(), (*again)->ca_cert_pem());
  EXPECT_EQ((*first)->coordinator().key_pem, (*again)->coordinator().key_pem);
  struct stat st;
  ASSERT_EQ(::stat((dir_ + "/state/ca.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(CertificateCommonName((*first)->coordinator().cert_chain_pem).value_or(""),
            kCoordinatorIdentity);
}

TEST_F(PkiTest, IssuesOnlyForAValidRequestAndTheRightSecret) {
  auto ca = ClusterCa::OpenOrCreate(dir_);
  ASSERT_TRUE(ca.ok()) << ca.status();
  auto hash = CertificateSha256Hex((*ca)->ca_cert_pem());
  ASSERT_TRUE(hash.ok());
  auto token = LoadOrCreateJoinToken(dir_, *hash, false);
  ASSERT_TRUE(token.ok()) << token.status();
  JoinIssuer issuer(dir_, **ca);
  auto key = NewPrivateKeyPem();
  ASSERT_TRUE(key.ok());
  auto csr = NewCsrPem(*key);
  ASSERT_TRUE(csr.ok());

  auto issued = issuer.Join(token->secret, *csr, "node");
  ASSERT_TRUE(issued.ok()) << issued.status();
  EXPECT_EQ(issued->identity.rfind(kNodeIdentityPrefix, 0), 0u);
  EXPECT_EQ(CertificateCommonName(issued->cert_chain_pem).value_or(""), issued->identity);

  auto wrong = issuer.Join(std::string(64, 'a'), *csr, "node");
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(std::string(wrong.status().message()).find(std::string(64, 'a')), std::string::npos);
  EXPECT_EQ(issuer.Join(token->secret, *csr, "coordinator").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(issuer.Join(token->secret, "not a csr", "client").status().code(),
            absl::StatusCode::kInvalidArgument);
  // A request whose signature was tampered with is refused.
  std::string tampered = *csr;
  tampered[tampered.size() / 2] = tampered[tampered.size() / 2] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(issuer.Join(token->secret, tampered, "client").ok());

  // After rotation the old secret no longer joins.
  auto rotated = LoadOrCreateJoinToken(dir_, *hash, true);
  ASSERT_TRUE(rotated.ok());
  EXPECT_NE(rotated->secret, token->secret);
  EXPECT_EQ(issuer.Join(token->secret, *csr, "node").status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(issuer.Join(rotated->secret, *csr, "node").ok());
}

TEST(JoinTokenTest, ParsesOnlyWellFormedTokens) {
  const JoinToken t{std::string(64, 'a'), std::string(64, '0')};
  auto parsed = ParseJoinToken(FormatJoinToken(t) + "\n");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->ca_sha256, t.ca_sha256);
  EXPECT_EQ(parsed->secret, t.secret);
  EXPECT_FALSE(ParseJoinToken("").ok());
  EXPECT_FALSE(ParseJoinToken("tandem-join-v1." + std::string(64, 'a')).ok());
  EXPECT_FALSE(ParseJoinToken("tandem-join-v2." + t.ca_sha256 + "." + t.secret).ok());
  EXPECT_FALSE(ParseJoinToken("tandem-join-v1." + t.ca_sha256 + "." + std::string(64, 'G')).ok());
  EXPECT_FALSE(ParseJoinToken("tandem-join-v1." + t.ca_sha256 + "." + t.secret + ".x").ok());
  // The refusal never repeats the token.
  auto bad = ParseJoinToken("tandem-join-v1." + t.ca_sha256 + "." + std::string(63, 'b'));
  EXPECT_EQ(std::string(bad.status().message()).find(std::string(63, 'b')), std::string::npos);
  EXPECT_TRUE(SecretsEqual("abc", "abc"));
  EXPECT_FALSE(SecretsEqual("abc", "abd"));
  EXPECT_FALSE(SecretsEqual("abc", "abcd"));
}

TEST_F(PkiTest, RevocationListFollowsTheFile) {
  RevocationList list(dir_);
  EXPECT_FALSE(list.IsRevoked("node-1234"));
  ASSERT_TRUE(Revoke(dir_, "node-1234").ok());
  ASSERT_TRUE(Revoke(dir_, "node-1234").ok());  // once
  EXPECT_TRUE(list.IsRevoked("node-1234"));
  EXPECT_FALSE(list.IsRevoked("node-5678"));
  EXPECT_EQ(ReadWholeFile(dir_ + "/revoked").value_or(""), "node-1234\n");
  // What is pushed to nodes: node and client names only, sorted.
  ASSERT_TRUE(Revoke(dir_, "client-99").ok());
  ASSERT_TRUE(Revoke(dir_, "tandem-coordinator").ok());
  EXPECT_EQ(list.Identities(), (std::vector<std::string>{"client-99", "node-1234"}));
}

TEST_F(PkiTest, PushedRevocationsAreCheckedAndReplaced) {
  PushedRevocations pushed;
  auto added = pushed.Replace({"node-2", "node-1", "node-1"});
  ASSERT_TRUE(added.ok()) << added.status();
  EXPECT_EQ(*added, (std::vector<std::string>{"node-1", "node-2"}));
  EXPECT_TRUE(pushed.IsRevoked("node-1"));
  added = pushed.Replace({"node-1", "client-3"});
  ASSERT_TRUE(added.ok());
  EXPECT_EQ(*added, std::vector<std::string>{"client-3"});  // only what is new
  EXPECT_FALSE(pushed.IsRevoked("node-2"));                 // the coordinator's list rules
  // A bad list is refused whole and the one in force kept.
  auto bad = pushed.Replace({"node-4", "tandem-coordinator"});
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(pushed.IsRevoked("node-4"));
  EXPECT_TRUE(pushed.IsRevoked("client-3"));
  EXPECT_FALSE(pushed.Replace({"node-" + std::string(200, 'a')}).ok());
  EXPECT_FALSE(
      pushed.Replace(std::vector<std::string>(PushedRevocations::kMaxIdentities + 1, "node-1"))
          .ok());
  EXPECT_TRUE(pushed.IsRevoked("client-3"));
}

}  // namespace
}  // namespace tandem::security
