// The subcommands of the `cellguard` binary. Each registers itself on the application and runs
// when selected; the returned exit code becomes the process's.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace cellguard::cli {

// A subcommand's action, set by its register function, run by main() after parsing.
using Action = std::function<int()>;

void register_decode(CLI::App& app, Action& action);
void register_dbc(CLI::App& app, Action& action);
void register_encode(CLI::App& app, Action& action);
void register_convert(CLI::App& app, Action& action);
void register_generate(CLI::App& app, Action& action);
void register_sim(CLI::App& app, Action& action);
void register_edge(CLI::App& app, Action& action);
void register_fault_proxy(CLI::App& app, Action& action);
void register_export(CLI::App& app, Action& action);
void register_pki(CLI::App& app, Action& action);
void register_server(CLI::App& app, Action& action);
void register_monitor(CLI::App& app, Action& action);
void register_recording(CLI::App& app, Action& action);

}  // namespace cellguard::cli
