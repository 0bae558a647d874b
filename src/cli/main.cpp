// cellguard: one binary, one subcommand per tool.
#include <CLI/CLI.hpp>

int main(int argc, char** argv) {
  CLI::App app{"cellguard: guards battery energy-storage systems and records everything they do"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "cellguard 0.1.0");
  CLI11_PARSE(app, argc, argv);
  return 0;
}
