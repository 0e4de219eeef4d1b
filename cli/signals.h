// Orderly shutdown on SIGINT / SIGTERM for the long-running commands.
#pragma once

namespace tandem::cli {

// Blocks SIGINT and SIGTERM in this thread and every thread it starts afterwards.
void BlockTerminationSignals();
// Waits for SIGINT or SIGTERM (blocked beforehand), or until `*stop` turns true (polled).
// Returns the signal number, or 0 when stopped.
int WaitForTermination(const volatile bool* stop = nullptr);

}  // namespace tandem::cli
