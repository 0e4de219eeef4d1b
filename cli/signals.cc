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

int WaitForTermination(const volatile bool* stop) {
  sigset_t set = TerminationSet();
  for (;;) {
    timespec timeout{0, 100 * 1000 * 1000};
    int sig = sigtimedwait(&set, nullptr, &timeout);
    if (sig > 0) return sig;
    if (stop && *stop) return 0;
  }
}

}  // namespace tandem::cli
