#include "cli/process_group.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "absl/strings/str_cat.h"

namespace tandem::cli {
namespace {

// Pids the signal handler may kill; written only outside handlers.
constexpr int kMaxChildren = 256;
std::atomic<pid_t> g_children[kMaxChildren];

void Track(pid_t pid) {
  for (auto& slot : g_children) {
    pid_t empty = 0;
    if (slot.compare_exchange_strong(empty, pid)) return;
  }
}

void Untrack(pid_t pid) {
  for (auto& slot : g_children) {
    pid_t p = pid;
    if (slot.compare_exchange_strong(p, 0)) return;
  }
}

volatile sig_atomic_t g_interrupted = 0;

// First signal: kill the children and let the parent's main thread notice (its calls to
// them fail) and clean up. A second signal exits at once.
void KillChildren(int) {
  if (g_interrupted) _exit(130);
  g_interrupted = 1;
  for (auto& slot : g_children) {
    pid_t p = slot.load();
    if (p > 0) ::kill(p, SIGKILL);
  }
}

}  // namespace

void InstallChildReaper() {
  struct sigaction sa = {};
  sa.sa_handler = KillChildren;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGHUP, &sa, nullptr);
}

bool Interrupted() { return g_interrupted != 0; }

ProcessGroup::ProcessGroup() = default;

ProcessGroup::~ProcessGroup() { StopAll(); }

pid_t ProcessGroup::Spawn(const std::string& name, const std::vector<std::string>& argv,
                          const std::string& log_path) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    // Die with the parent, even if it is killed outright.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) _exit(1);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) {
      ::dup2(fd, STDOUT_FILENO);
      ::dup2(fd, STDERR_FILENO);
    }
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, STDIN_FILENO);
    ::execv(args[0], args.data());
    _exit(127);
  }
  Track(pid);
  children_.push_back({name, pid});
  return pid;
}

std::string ProcessGroup::CheckExited() {
  for (auto& c : children_) {
    if (c.exited) continue;
    int status = 0;
    if (::waitpid(c.pid, &status, WNOHANG) == c.pid) {
      c.exited = true;
      Untrack(c.pid);
      if (WIFEXITED(status))
        return absl::StrCat(c.name, " exited with status ", WEXITSTATUS(status));
      if (WIFSIGNALED(status))
        return absl::StrCat(c.name, " was killed by signal ", WTERMSIG(status));
      return absl::StrCat(c.name, " stopped");
    }
  }
  return "";
}

int ProcessGroup::WaitExit(pid_t pid, int timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (auto& c : children_) {
    if (c.pid != pid || c.exited) continue;
    for (;;) {
      int status = 0;
      if (::waitpid(c.pid, &status, WNOHANG) == c.pid) {
        c.exited = true;
        Untrack(c.pid);
        return status;
      }
      if (std::chrono::steady_clock::now() > deadline) return -1;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  return -1;
}

std::vector<pid_t> ProcessGroup::pids() const {
  std::vector<pid_t> out;
  for (const auto& c : children_) out.push_back(c.pid);
  return out;
}

void ProcessGroup::StopAll(int grace_ms) {
  for (auto& c : children_) {
    if (!c.exited) ::kill(c.pid, SIGTERM);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(grace_ms);
  for (auto& c : children_) {
    while (!c.exited) {
      int status;
      if (::waitpid(c.pid, &status, WNOHANG) == c.pid) {
        c.exited = true;
        break;
      }
      if (std::chrono::steady_clock::now() > deadline) {
        ::kill(c.pid, SIGKILL);
        ::waitpid(c.pid, &status, 0);
        c.exited = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    Untrack(c.pid);
  }
}

}  // namespace tandem::cli
