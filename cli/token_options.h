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
// Joins as a client when a token was given; otherwise links stay plaintext.
absl::Status JoinAsClient(const std::string& coordinator, const TokenOptions& options);

}  // namespace tandem::cli
