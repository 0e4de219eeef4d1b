#include <cstdio>
#include <exception>

#include "cli/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"tandem: one large language model across several ordinary machines"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "tandem 0.1.0");
  tandem::cli::RunState state;
  tandem::cli::RegisterGenerateCommand(app, state);
  tandem::cli::RegisterInfoCommand(app, state);
  tandem::cli::RegisterPlanCommand(app, state);
  tandem::cli::RegisterMakeModelCommand(app, state);
  tandem::cli::RegisterBenchCommand(app, state);
  tandem::cli::RegisterRunCommand(app, state);
  tandem::cli::RegisterCoordinatorCommand(app, state);
  tandem::cli::RegisterNodeCommand(app, state);
  tandem::cli::RegisterStatusCommand(app, state);
  tandem::cli::RegisterClusterCommand(app, state);
  tandem::cli::RegisterChatCommand(app, state);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tandem: error: %s\n", e.what());
    return 1;
  }
  return state.exit_code;
}
