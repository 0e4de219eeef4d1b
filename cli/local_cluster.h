// A whole cluster on this machine: a coordinator and node processes of the `tandem`
// binary on 127.0.0.1, stopped (every child) when the object goes away. Behind
// `tandem run`, the integration tests and the pipeline benchmark.
#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "cli/process_group.h"
#include "tandem.pb.h"

namespace tandem::cli {

struct LocalClusterOptions {
  std::string model;
  int nodes = 1;
  std::string split;  // layer counts per node, e.g. "2,3"; empty: `planner`
  std::string planner = "even";
  int threads = 1;                            // per node
  std::vector<std::string> coordinator_args;  // more flags for the coordinator
  std::vector<std::string> node_args;         // more flags for every node
  // A cluster state directory (CA, join token) in dir(): every link is mutual TLS, nodes
  // join with the token, and this process joins as a client.
  bool tls = false;
  // Told what the cluster is waiting for, each time that changes while it comes up.
  std::function<void(const std::string&)> on_progress;
};

class LocalCluster {
 public:
  // `binary` is the tandem executable the processes run.
  explicit LocalCluster(std::string binary);
  ~LocalCluster();
  LocalCluster(const LocalCluster&) = delete;
  LocalCluster& operator=(const LocalCluster&) = delete;

  // Starts the coordinator and the nodes and waits until the plan serves. An error names
  // the process that failed and ends with the tail of its log.
  absl::Status Start(const LocalClusterOptions& options, int timeout_ms = 120000);
  // Only the coordinator (for `options.nodes` nodes), for a caller that starts the nodes.
  absl::Status StartCoordinator(const LocalClusterOptions& options);
  // Starts one more node process for `model` (empty: none; a node without the model file
  // then needs --cache-dir among `args`) with more flags `args`.
  pid_t StartNode(const std::string& model, int threads = 1,
                  const std::vector<std::string>& args = {});
  // The address node `index` serves at, from its log ("" until it registered).
  std::string NodeAddress(size_t index) const;
  // Waits up to `timeout_ms` for node `index` to exit: its wait status, or -1.
  int WaitNodeExit(size_t index, int timeout_ms);
  // Starts node `index` again at the address it served at, after its process exited
  // (it is killed with SIGKILL when it still runs). Its log goes on in the same file.
  pid_t RestartNode(size_t index);
  // Kills the coordinator (SIGKILL) and starts it again on the same port.
  absl::Status RestartCoordinator();
  // Every process the cluster ever started, exited ones included.
  std::vector<pid_t> all_pids() const { return group_->pids(); }
  absl::Status WaitReady(int timeout_ms = 120000);

  const std::string& address() const { return address_; }
  pid_t coordinator_pid() const { return coordinator_pid_; }
  const std::vector<pid_t>& node_pids() const { return node_pids_; }
  // Processes' logs: coordinator.log, node0.log, node1.log, …
  const std::string& dir() const { return dir_; }
  // The coordinator's --state-dir and its join token file (with `tls`; else empty).
  std::string state_dir() const { return tls_ ? dir_ + "/state" : ""; }
  std::string token_file() const { return tls_ ? state_dir() + "/join-token" : ""; }
  std::string NodeLog(size_t index) const;
  // The coordinator's status when it became ready.
  const v1::StatusResponse& status() const { return status_; }
  // Leaves the logs in dir() when the cluster is destroyed.
  void KeepLogs() { keep_logs_ = true; }
  void Stop() { group_->StopAll(2000); }
  // The name and exit of a process that has exited, or "" when all run.
  std::string CheckExited() { return group_->CheckExited(); }

 private:
  absl::Status ChildExited(const std::string& what);

  std::string binary_;
  std::string dir_;
  std::string address_;
  std::unique_ptr<ProcessGroup> group_;
  pid_t coordinator_pid_ = 0;
  std::vector<pid_t> node_pids_;
  v1::StatusResponse status_;
  std::vector<std::string> node_args_;
  std::vector<std::string> coordinator_argv_;
  std::vector<std::vector<std::string>> node_argv_;  // each node's command
  std::function<void(const std::string&)> on_progress_;
  bool keep_logs_ = false;
  bool tls_ = false;
};

std::string ReadFile(const std::string& path);

}  // namespace tandem::cli
