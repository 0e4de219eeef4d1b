#include "cli/local_cluster.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "net/client.h"
#include "net/cluster_join.h"

namespace tandem::cli {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

namespace {
std::string Tail(const std::string& text, size_t max_bytes = 2000) {
  return text.size() > max_bytes ? text.substr(text.size() - max_bytes) : text;
}
}  // namespace

LocalCluster::LocalCluster(std::string binary)
    : binary_(std::move(binary)), group_(std::make_unique<ProcessGroup>()) {
  char tmpl[] = "/tmp/tandem-cluster-XXXXXX";
  const char* dir = ::mkdtemp(tmpl);
  dir_ = dir ? dir : "/tmp";
}

LocalCluster::~LocalCluster() {
  group_->StopAll(2000);
  if (!keep_logs_ && dir_ != "/tmp") std::filesystem::remove_all(dir_);
}

pid_t LocalCluster::StartNode(const std::string& model, int threads,
                              const std::vector<std::string>& more) {
  const size_t index = node_pids_.size();
  const std::string name = absl::StrCat("node", index);
  std::vector<std::string> args = {binary_,  "node",      "--coordinator",
                                   address_, "--threads", std::to_string(threads)};
  if (!model.empty()) args.insert(args.end(), {"--model", model});
  if (tls_) args.insert(args.end(), {"--token-file", token_file()});
  args.insert(args.end(), node_args_.begin(), node_args_.end());
  args.insert(args.end(), more.begin(), more.end());
  pid_t pid = group_->Spawn(name, args, absl::StrCat(dir_, "/", name, ".log"));
  node_pids_.push_back(pid);
  node_argv_.push_back(args);
  return pid;
}

std::string LocalCluster::NodeAddress(size_t index) const {
  const std::string log = NodeLog(index);
  const std::string key = " serving at ";
  const size_t at = log.rfind(key);
  if (at == std::string::npos) return "";
  const size_t begin = at + key.size();
  return log.substr(begin, log.find(' ', begin) - begin);
}

int LocalCluster::WaitNodeExit(size_t index, int timeout_ms) {
  return group_->WaitExit(node_pids_.at(index), timeout_ms);
}

pid_t LocalCluster::RestartNode(size_t index) {
  const std::string address = NodeAddress(index);
  if (WaitNodeExit(index, 0) == -1) {
    ::kill(node_pids_[index], SIGKILL);
    WaitNodeExit(index, 10000);
  }
  const std::string name = absl::StrCat("node", index);
  // The same command, listening where it listened before.
  std::vector<std::string> args = node_argv_[index];
  auto listen = std::find(args.begin(), args.end(), "--listen");
  if (listen != args.end() && listen + 1 != args.end()) {
    *(listen + 1) = address;
  } else {
    args.insert(args.end(), {"--listen", address});
  }
  node_pids_[index] = group_->Spawn(name, args, absl::StrCat(dir_, "/", name, ".log"));
  return node_pids_[index];
}

absl::Status LocalCluster::RestartCoordinator() {
  ::kill(coordinator_pid_, SIGKILL);
  if (group_->WaitExit(coordinator_pid_, 10000) == -1) {
    return absl::DeadlineExceededError("the coordinator did not die");
  }
  std::vector<std::string> args = coordinator_argv_;
  for (size_t i = 0; i + 1 < args.size(); ++i) {
    if (args[i] == "--listen") args[i + 1] = address_;
  }
  coordinator_pid_ = group_->Spawn("coordinator", args, dir_ + "/coordinator.log");
  return coordinator_pid_ > 0 ? absl::OkStatus()
                              : absl::InternalError("cannot start the coordinator");
}

std::string LocalCluster::NodeLog(size_t index) const {
  return ReadFile(absl::StrCat(dir_, "/node", index, ".log"));
}

absl::Status LocalCluster::ChildExited(const std::string& what) {
  // ProcessGroup names a child first: "node1 exited with status 2".
  const std::string name = what.substr(0, what.find(' '));
  return absl::AbortedError(absl::StrCat(what, "\n--- ", dir_, "/", name, ".log ---\n",
                                         Tail(ReadFile(dir_ + "/" + name + ".log"))));
}

absl::Status LocalCluster::WaitReady(int timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  std::string told;
  for (;;) {
    auto s = RemoteStatus(address_, 1000);
    if (on_progress_) {
      // The node count says more than the coordinator's "waiting for nodes" reason.
      std::string now = "waiting for the coordinator";
      if (s.ok() && s->ready()) {
        now = absl::StrCat("ready: plan epoch ", s->plan_epoch(), ", ", s->stages_size(),
                           " stage(s) on ", s->n_nodes(), " node(s)");
      } else if (s.ok()) {
        now = absl::StrCat(s->n_nodes(), " of ", node_pids_.size(), " node(s) registered");
        if (s->reason().rfind("waiting for nodes", 0) != 0)
          absl::StrAppend(&now, "; ", s->reason());
        for (const v1::NodeInfo& n : s->nodes()) {
          if (n.layers_to_load() > 0) {
            absl::StrAppend(&now, "; ", n.node_id(), " loading layers ", n.layers_loaded(), "/",
                            n.layers_to_load());
          }
        }
      }
      if (now != told) on_progress_(told = now);
    }
    if (s.ok() && s->ready()) {
      status_ = *s;
      return absl::OkStatus();
    }
    const std::string exited = group_->CheckExited();
    if (!exited.empty()) return ChildExited(exited);
    if (std::chrono::steady_clock::now() > deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("the cluster did not become ready: ",
                       s.ok() ? s->reason() : std::string(s.status().message()),
                       "\n--- coordinator.log ---\n", Tail(ReadFile(dir_ + "/coordinator.log"))));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
  }
}

absl::Status LocalCluster::Start(const LocalClusterOptions& o, int timeout_ms) {
  if (absl::Status s = StartCoordinator(o); !s.ok()) return s;
  for (int i = 0; i < o.nodes; ++i) StartNode(o.model, o.threads);
  return WaitReady(timeout_ms);
}

absl::Status LocalCluster::StartCoordinator(const LocalClusterOptions& o) {
  node_args_ = o.node_args;
  on_progress_ = o.on_progress;
  tls_ = o.tls;
  const std::string port_file = dir_ + "/coordinator.port";
  std::vector<std::string> args = {
      binary_,       "coordinator",           "--model",     o.model,
      "--listen",    "127.0.0.1:0",           "--port-file", port_file,
      "--min-nodes", std::to_string(o.nodes), "--planner",   o.planner};
  if (!o.split.empty()) args.insert(args.end(), {"--split", o.split});
  if (tls_) args.insert(args.end(), {"--state-dir", state_dir()});
  args.insert(args.end(), o.coordinator_args.begin(), o.coordinator_args.end());
  coordinator_argv_ = args;
  coordinator_pid_ = group_->Spawn("coordinator", args, dir_ + "/coordinator.log");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (address_.empty()) {
    std::ifstream in(port_file);
    int port = 0;
    if (in >> port && port > 0) {
      address_ = absl::StrCat("127.0.0.1:", port);
      break;
    }
    const std::string exited = group_->CheckExited();
    if (!exited.empty()) return ChildExited(exited);
    if (std::chrono::steady_clock::now() > deadline) {
      return absl::DeadlineExceededError("the coordinator did not start");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (tls_) {
    // The coordinator wrote its token before its port: join as a client to watch it.
    auto token = security::JoinTokenFromFlags("", token_file());
    if (!token.ok()) return token.status();
    if (absl::Status s = JoinCluster(address_, *token, "client"); !s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace tandem::cli
