// Every `tandem` subcommand registers itself on the CLI11 app. Each lives in its own
// file (cli/<name>_command.cc) and returns the process exit code through `exit_code`.
#pragma once

#include <CLI/CLI.hpp>

namespace tandem::cli {

// Set by the chosen subcommand's callback.
struct RunState {
  int exit_code = 0;
};

void RegisterGenerateCommand(CLI::App& app, RunState& state);
void RegisterInfoCommand(CLI::App& app, RunState& state);
void RegisterMakeModelCommand(CLI::App& app, RunState& state);
void RegisterBenchCommand(CLI::App& app, RunState& state);
void RegisterPlanCommand(CLI::App& app, RunState& state);
void RegisterNodeCommand(CLI::App& app, RunState& state);
void RegisterCoordinatorCommand(CLI::App& app, RunState& state);
void RegisterRunCommand(CLI::App& app, RunState& state);
void RegisterStatusCommand(CLI::App& app, RunState& state);
void RegisterClusterCommand(CLI::App& app, RunState& state);
void RegisterChatCommand(CLI::App& app, RunState& state);

}  // namespace tandem::cli
