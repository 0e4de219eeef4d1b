#include "security/join_token.h"

#include <openssl/crypto.h>

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "security/pki.h"

namespace tandem::security {
namespace {

constexpr char kPrefix[] = "tandem-join-v1";
constexpr size_t kHexDigits = 64;
constexpr int kSecretBytes = 32;

bool IsLowerHex(absl::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<JoinToken> ParseJoinToken(absl::string_view text) {
  text = absl::StripAsciiWhitespace(text);
  // Never echo the text: it may be a real token with a typo.
  std::vector<absl::string_view> parts = absl::StrSplit(text, '.');
  if (parts.size() != 3 || parts[0] != kPrefix) {
    return absl::InvalidArgumentError(
        absl::StrCat("not a join token: expected ", kPrefix, ".<CA hash>.<secret>"));
  }
  if (parts[1].size() != kHexDigits || !IsLowerHex(parts[1]) || parts[2].size() != kHexDigits ||
      !IsLowerHex(parts[2])) {
    return absl::InvalidArgumentError(
        "not a join token: its CA hash and secret must be 64 lowercase hex digits each");
  }
  return JoinToken{std::string(parts[1]), std::string(parts[2])};
}

std::string FormatJoinToken(const JoinToken& token) {
  return absl::StrCat(kPrefix, ".", token.ca_sha256, ".", token.secret);
}

absl::StatusOr<JoinToken> JoinTokenFromFlags(const std::string& token,
                                             const std::string& token_file) {
  if (!token.empty()) return ParseJoinToken(token);
  absl::StatusOr<std::string> text = ReadWholeFile(token_file);
  if (!text.ok()) return text.status();
  if (text->size() > 4096) {
    return absl::InvalidArgumentError(absl::StrCat(token_file, " is not a join token file"));
  }
  absl::StatusOr<JoinToken> parsed = ParseJoinToken(text->substr(0, text->find('\n')));
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(token_file, ": ", parsed.status().message()));
  }
  return parsed;
}

bool SecretsEqual(absl::string_view a, absl::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

absl::StatusOr<JoinToken> LoadOrCreateJoinToken(const std::string& dir,
                                                const std::string& ca_sha256, bool rotate) {
  const std::string path = absl::StrCat(dir, "/", kJoinTokenFile);
  if (!rotate) {
    absl::StatusOr<std::string> text = ReadWholeFile(path);
    if (text.ok()) {
      absl::StatusOr<JoinToken> token = ParseJoinToken(text->substr(0, text->find('\n')));
      if (token.ok() && token->ca_sha256 == ca_sha256) return token;
    }
  }
  absl::StatusOr<std::string> secret = RandomHex(kSecretBytes);
  if (!secret.ok()) return secret.status();
  JoinToken token{ca_sha256, *secret};
  if (absl::Status s = WriteFileAtomically(path, FormatJoinToken(token) + "\n", 0600); !s.ok()) {
    return s;
  }
  return token;
}

}  // namespace tandem::security
