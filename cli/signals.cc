#include "cli/signals.h"

#include <signal.h>
#include <time.h>

namespace tandem::cli {

namespace {
sigset_t TerminationSet() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}
}  // namespace

void BlockTerminationSignals() {
  sigset_t set = TerminationSet();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

int WaitForTermination() {
  sigset_t set = TerminationSet();
  for (;;) {
    int sig = 0;
    if (sigwait(&set, &sig) == 0) return sig;
  }
}

bool WaitForTerminationFor(int ms) {
  sigset_t set = TerminationSet();
  const timespec timeout{ms / 1000, (ms % 1000) * 1000000L};
  return sigtimedwait(&set, nullptr, &timeout) > 0;
}

}  // namespace tandem::cli
