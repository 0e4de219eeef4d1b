#include "tests/local_cluster.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace tandem::testing {

std::string TandemBinary() { return std::string(TANDEM_BINARY_DIR) + "/cli/tandem"; }

CommandResult RunTandem(const std::string& args) {
  const std::string base =
      (std::filesystem::temp_directory_path() / ("tandem_cmd_" + std::to_string(::getpid())))
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

uint64_t ResidentBytes(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string key;
  while (in >> key) {
    if (key == "VmRSS:") {
      uint64_t kb;
      in >> kb;
      return kb * 1024;
    }
    in.ignore(1 << 20, '\n');
  }
  return 0;
}

}  // namespace tandem::testing
