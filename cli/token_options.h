// --token / --token-file, shared by every command that talks to a coordinator: with one,
// the command joins the cluster (net/cluster_join.h) before its first call.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "absl/status/status.h"

namespace tandem::cli {

struct TokenOptions {
  std::string token;
  std::string token_file;
};

void AddTokenOptions(CLI::App* cmd, TokenOptions* options);
// Joins as a client when a token was given; otherwise links stay plaintext. A token the
// coordinator refuses (wrong, or replaced by `tandem cluster rotate-token`) is an error
// that says so and where the current one is.
absl::Status JoinAsClient(const std::string& coordinator, const TokenOptions& options);
// `failed` (a client command's call to `coordinator`) as the user should read it: without
// a token, a coordinator that speaks TLS gets the hint to pass --token-file instead of
// gRPC's connection error. Anything else is returned as it is.
absl::Status ExplainClusterError(const std::string& coordinator, const TokenOptions& options,
                                 const absl::Status& failed);

}  // namespace tandem::cli
