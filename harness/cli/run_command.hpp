// CLI subcommands: `run` (one kill-and-verify cell), `discover` (crossing counts) and
// `points` (crash points compiled into a binary). Each registers itself and returns the
// callback that runs it and yields the exit code.
#pragma once

#include <CLI/CLI.hpp>

namespace crashkit::cli {

// Registers the subcommand; the returned callback runs it and yields the process exit code.
std::function<int()> add_run_command(CLI::App& app);
std::function<int()> add_discover_command(CLI::App& app);
std::function<int()> add_points_command(CLI::App& app);
std::function<int()> add_matrix_command(CLI::App& app);

}  // namespace crashkit::cli
