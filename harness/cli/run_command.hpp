// CLI subcommands: `run` (one kill-and-verify cell), `discover` (crossing counts) and
// `points` (crash points compiled into a binary). Each registers itself and returns the
// callback that runs it and yields the exit code.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

namespace crashkit::cli {

// Registers the subcommand; the returned callback runs it and yields the process exit code.
std::function<int()> add_run_command(CLI::App& app);
std::function<int()> add_discover_command(CLI::App& app);
std::function<int()> add_points_command(CLI::App& app);
std::function<int()> add_matrix_command(CLI::App& app);
std::function<int()> add_workload_command(CLI::App& app);  // ledger_commands.cpp
std::function<int()> add_verify_command(CLI::App& app);

// A validator for counts (--cycles, --jobs): a whole number from 1 to 1,000,000, said in one
// short line (CLI11's PositiveNumber printed a 309-digit range).
inline CLI::Validator at_least_one() {
  return CLI::Validator(
      [](std::string& s) -> std::string {
        std::size_t used = 0;
        long long v = 0;
        try {
          v = std::stoll(s, &used);
        } catch (...) {
          used = 0;
        }
        if (used != s.size() || s.empty() || s[0] == '+' || v < 1 || v > 1000000)
          return "'" + s + "' is not a whole number from 1 to 1000000";
        return {};
      },
      "N >= 1");
}

}  // namespace crashkit::cli
