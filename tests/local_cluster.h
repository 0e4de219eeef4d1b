// Test support: the built `tandem` binary, a real local cluster of it (cli/local_cluster.h),
// and running it as a command.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "cli/local_cluster.h"
#include "tandem.pb.h"

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

// A generation request: temperature 0 is greedy; otherwise top-k 40, top-p 0.95,
// min-p 0.05, no repetition penalty, and `seed`.
v1::GenerateRequest SamplingRequest(const std::string& prompt, int n, float temperature,
                                    uint64_t seed);

// Polls `done` every 10 ms until it holds (true) or `timeout` passes (false).
bool WaitFor(const std::function<bool()>& done, std::chrono::milliseconds timeout);

}  // namespace tandem::testing
