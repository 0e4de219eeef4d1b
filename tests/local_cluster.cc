#include "tests/local_cluster.h"

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "net/client.h"

namespace tandem::testing {

std::string TandemBinary() { return std::string(TANDEM_BINARY_DIR) + "/cli/tandem"; }

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

CommandResult RunTandem(const std::string& args) {
  const std::string base = (std::filesystem::temp_directory_path() /
                            ("tandem_cmd_" + std::to_string(::getpid())))
                               .string();
  const std::string cmd = TandemBinary() + " " + args + " > " + base + ".out 2> " + base + ".err";
  const int status = std::system(cmd.c_str());
  CommandResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = ReadFile(base + ".out");
  r.err = ReadFile(base + ".err");
  std::filesystem::remove(base + ".out");
  std::filesystem::remove(base + ".err");
  return r;
}

LocalCluster::LocalCluster() : group_(std::make_unique<cli::ProcessGroup>()) {
  char tmpl[] = "/tmp/tandem-test-XXXXXX";
  dir_ = ::mkdtemp(tmpl);
}

LocalCluster::~LocalCluster() {
  group_->StopAll(2000);
  std::filesystem::remove_all(dir_);
}

pid_t LocalCluster::StartNode(const std::string& model, int threads) {
  const size_t index = node_pids_.size();
  pid_t pid = group_->Spawn(absl::StrCat("node ", index),
                            {TandemBinary(), "node", "--coordinator", address_, "--model", model,
                             "--threads", std::to_string(threads)},
                            absl::StrCat(dir_, "/node", index, ".log"));
  node_pids_.push_back(pid);
  return pid;
}

std::string LocalCluster::NodeLog(size_t index) const {
  return ReadFile(absl::StrCat(dir_, "/node", index, ".log"));
}

absl::Status LocalCluster::WaitReady(int timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    auto s = RemoteStatus(address_, 1000);
    if (s.ok() && s->ready()) {
      status_ = *s;
      return absl::OkStatus();
    }
    std::string exited = group_->CheckExited();
    if (!exited.empty()) {
      return absl::AbortedError(absl::StrCat(exited, "\ncoordinator log:\n",
                                             ReadFile(dir_ + "/coordinator.log")));
    }
    if (std::chrono::steady_clock::now() > deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          "cluster not ready: ", s.ok() ? s->reason() : std::string(s.status().message()),
          "\ncoordinator log:\n", ReadFile(dir_ + "/coordinator.log")));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
  }
}

absl::Status LocalCluster::Start(const ClusterOptions& o) {
  const std::string port_file = dir_ + "/coordinator.port";
  std::vector<std::string> args = {TandemBinary(), "coordinator", "--model", o.model, "--listen",
                                   "127.0.0.1:0", "--port-file", port_file, "--min-nodes",
                                   std::to_string(o.nodes), "--planner", o.planner};
  if (!o.split.empty()) args.insert(args.end(), {"--split", o.split});
  args.insert(args.end(), o.coordinator_args.begin(), o.coordinator_args.end());
  group_->Spawn("coordinator", args, dir_ + "/coordinator.log");
  for (int i = 0; i < 400 && address_.empty(); ++i) {
    std::ifstream in(port_file);
    int port = 0;
    if (in >> port && port > 0) {
      address_ = absl::StrCat("127.0.0.1:", port);
      break;
    }
    std::string exited = group_->CheckExited();
    if (!exited.empty()) {
      return absl::AbortedError(absl::StrCat(exited, ": ", ReadFile(dir_ + "/coordinator.log")));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  if (address_.empty()) return absl::DeadlineExceededError("the coordinator did not start");
  for (int i = 0; i < o.nodes; ++i) StartNode(o.model, o.threads);
  return WaitReady();
}

}  // namespace tandem::testing
