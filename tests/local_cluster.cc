#include "tests/local_cluster.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

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

v1::GenerateRequest SamplingRequest(const std::string& prompt, int n, float temperature,
                                    uint64_t seed) {
  v1::GenerateRequest r;
  r.set_prompt(prompt);
  r.set_n_predict(n);
  auto* s = r.mutable_sampling();
  s->set_temperature(temperature);
  s->set_top_k(40);
  s->set_top_p(0.95f);
  s->set_min_p(0.05f);
  s->set_repeat_penalty(1.0f);
  s->set_repeat_last_n(64);
  s->set_seed(seed);
  return r;
}

bool WaitFor(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (done()) return true;
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace tandem::testing
