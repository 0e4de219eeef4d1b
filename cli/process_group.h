// Child processes that live and die together: `tandem run` starts a coordinator and its
// nodes as children and takes them all down on exit, on Ctrl-C, or when one dies.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace tandem::cli {

class ProcessGroup {
 public:
  ProcessGroup();
  ~ProcessGroup();  // stops every child
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

  // Starts `argv` (argv[0] is the program path) with stdout and stderr appended to
  // `log_path`. Returns the pid, or -1.
  pid_t Spawn(const std::string& name, const std::vector<std::string>& argv,
              const std::string& log_path);
  // The name and exit description of a child that has exited, or "" when all run.
  std::string CheckExited();
  // Waits up to `timeout_ms` for child `pid` to exit and reaps it: its wait status, or -1
  // when it still runs (or is not a child of this group). A reaped child no longer counts
  // for CheckExited.
  int WaitExit(pid_t pid, int timeout_ms);
  // Every child ever spawned, in order (exited ones included).
  std::vector<pid_t> pids() const;
  // SIGTERM to all, then SIGKILL to any still alive after the grace period.
  void StopAll(int grace_ms = 3000);

 private:
  struct Child {
    std::string name;
    pid_t pid;
    bool exited = false;
  };
  std::vector<Child> children_;
};

// Installs SIGINT/SIGTERM/SIGHUP handlers that kill every child of any ProcessGroup; the
// caller then sees its children gone, cleans up and exits (a second signal exits at once).
void InstallChildReaper();
// Whether such a signal arrived.
bool Interrupted();

}  // namespace tandem::cli
