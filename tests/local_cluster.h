// A real cluster for integration tests: a coordinator and node processes of the built
// `tandem` binary on 127.0.0.1, stopped (with every child) when the object goes away.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "cli/process_group.h"
#include "tandem.pb.h"

namespace tandem::testing {

struct ClusterOptions {
  std::string model;
  int nodes = 1;
  std::string split;          // layer counts per node, e.g. "2,3"; empty: --planner
  std::string planner = "even";
  int threads = 1;            // per node
  std::vector<std::string> coordinator_args;
};

class LocalCluster {
 public:
  LocalCluster();
  ~LocalCluster();

  // Starts the processes and waits until the plan serves.
  absl::Status Start(const ClusterOptions& options);
  // Starts one more node process for `model`, with its log in the cluster's folder.
  pid_t StartNode(const std::string& model, int threads = 1);

  const std::string& address() const { return address_; }
  const std::vector<pid_t>& node_pids() const { return node_pids_; }
  const std::string& dir() const { return dir_; }
  absl::Status WaitReady(int timeout_ms = 60000);
  const v1::StatusResponse& status() const { return status_; }
  std::string NodeLog(size_t index) const;

 private:
  std::string dir_;
  std::string address_;
  std::unique_ptr<cli::ProcessGroup> group_;
  std::vector<pid_t> node_pids_;
  v1::StatusResponse status_;
};

std::string TandemBinary();
std::string ReadFile(const std::string& path);

// Runs the built `tandem` with `args` (shell words) and captures its output.
struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};
CommandResult RunTandem(const std::string& args);

}  // namespace tandem::testing
