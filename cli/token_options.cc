#include "cli/token_options.h"

#include "net/cluster_join.h"

namespace tandem::cli {

void AddTokenOptions(CLI::App* cmd, TokenOptions* options) {
  cmd->add_option("--token-file", options->token_file,
                  "The cluster's join token, in a file (the coordinator's STATE_DIR/join-token)");
  cmd->add_option("--token", options->token,
                  "The cluster's join token (tandem-join-v1.…); prefer --token-file: a command "
                  "line is visible to other users");
}

absl::Status JoinAsClient(const std::string& coordinator, const TokenOptions& options) {
  return JoinClusterFromFlags(coordinator, options.token, options.token_file);
}

}  // namespace tandem::cli
