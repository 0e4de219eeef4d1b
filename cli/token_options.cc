#include "cli/token_options.h"

#include "absl/strings/str_cat.h"
#include "net/cluster_join.h"
#include "security/ca_fetch.h"

namespace tandem::cli {

void AddTokenOptions(CLI::App* cmd, TokenOptions* options) {
  cmd->add_option("--token-file", options->token_file,
                  "The cluster's join token, in a file (the coordinator's STATE_DIR/join-token)");
  cmd->add_option("--token", options->token,
                  "The cluster's join token (tandem-join-v1.…); prefer --token-file: a command "
                  "line is visible to other users");
}

namespace {

constexpr char kWhereTheTokenIs[] =
    "pass --token-file (the coordinator wrote it to <state-dir>/join-token)";

}  // namespace

absl::Status JoinAsClient(const std::string& coordinator, const TokenOptions& options) {
  absl::Status s = JoinClusterFromFlags(coordinator, options.token, options.token_file);
  if (s.code() != absl::StatusCode::kPermissionDenied) return s;
  // Refused: the secret (a wrong or rotated token) or the CA (another cluster's token).
  return absl::PermissionDeniedError(absl::StrCat(
      "the coordinator at ", coordinator,
      " refused this join token: it is wrong, from another cluster, or was replaced by "
      "`tandem cluster rotate-token`; ",
      kWhereTheTokenIs, " with the current token (", s.message(), ")"));
}

absl::Status ExplainClusterError(const std::string& coordinator, const TokenOptions& options,
                                 const absl::Status& failed) {
  if (failed.ok() || !options.token.empty() || !options.token_file.empty()) return failed;
  if (failed.code() != absl::StatusCode::kUnavailable &&
      failed.code() != absl::StatusCode::kUnauthenticated) {
    return failed;
  }
  if (!security::SpeaksTls(coordinator)) return failed;
  return absl::UnauthenticatedError(absl::StrCat("the coordinator at ", coordinator,
                                                 " speaks TLS: this cluster requires a join "
                                                 "token: ",
                                                 kWhereTheTokenIs));
}

}  // namespace tandem::cli
