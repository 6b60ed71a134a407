// `crashkit run`: one kill-and-verify cell from the command line (CLI11 options -> CellSpec).
#pragma once

#include <CLI/CLI.hpp>

namespace crashkit::cli {

// Registers the subcommand; the returned callback runs it and yields the process exit code.
std::function<int()> add_run_command(CLI::App& app);

}  // namespace crashkit::cli
