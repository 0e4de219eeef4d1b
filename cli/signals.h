// Orderly shutdown on SIGINT / SIGTERM for the long-running commands.
#pragma once

namespace tandem::cli {

// Blocks SIGINT and SIGTERM in this thread and every thread it starts afterwards.
void BlockTerminationSignals();
// Waits for SIGINT or SIGTERM (blocked beforehand) and returns the signal number.
int WaitForTermination();
// Waits up to `ms` for SIGINT or SIGTERM (blocked beforehand): true when one came.
bool WaitForTerminationFor(int ms);

}  // namespace tandem::cli
