// cellguard: one binary, one subcommand per tool (see commands.h).
#include <csignal>

#include "cli/commands.h"

int main(int argc, char** argv) {
  // A closed output pipe (`cellguard decode ... | head`) ends the command quietly through a failed
  // write, instead of killing the process with SIGPIPE.
  std::signal(SIGPIPE, SIG_IGN);
  CLI::App app{"cellguard: guards battery energy-storage systems and records everything they do"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "cellguard 0.1.0");
  cellguard::cli::Action action;
  cellguard::cli::register_decode(app, action);
  cellguard::cli::register_dbc(app, action);
  cellguard::cli::register_encode(app, action);
  cellguard::cli::register_convert(app, action);
  cellguard::cli::register_generate(app, action);
  cellguard::cli::register_sim(app, action);
  cellguard::cli::register_edge(app, action);
  cellguard::cli::register_fault_proxy(app, action);
  cellguard::cli::register_export(app, action);
  cellguard::cli::register_pki(app, action);
  cellguard::cli::register_server(app, action);
  cellguard::cli::register_monitor(app, action);
  cellguard::cli::register_recording(app, action);
  CLI11_PARSE(app, argc, argv);
  return action ? action() : 0;
}
