// Test support: the built `tandem` binary, a real local cluster of it (cli/local_cluster.h),
// and running it as a command.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "cli/local_cluster.h"

namespace tandem::testing {

std::string TandemBinary();
using cli::ReadFile;

using ClusterOptions = cli::LocalClusterOptions;

// A cluster of this build's binary.
class LocalCluster : public cli::LocalCluster {
 public:
  LocalCluster() : cli::LocalCluster(TandemBinary()) {}
};

// Runs the built `tandem` with `args` (shell words) and captures its output.
struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};
CommandResult RunTandem(const std::string& args);

// The resident memory (VmRSS) of process `pid` in bytes; 0 when it cannot be read.
uint64_t ResidentBytes(pid_t pid);

}  // namespace tandem::testing
