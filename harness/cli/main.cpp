// The `crashkit` executable: a thin shell over crashkit::harness.
#include <fmt/format.h>

#include <CLI/CLI.hpp>

#include "crashkit/harness/outcome.hpp"
#include "crashkit/harness/sentinel.hpp"
#include "run_command.hpp"

int main(int argc, char** argv) {
  // First, while single-threaded: the sentinel SIGKILLs our daemons if we are killed.
  if (auto s = crashkit::start_sentinel(); !s) {
    fmt::print(stderr, "crashkit: {}\n", s.error().message);
    return crashkit::exit_code::harness_error;
  }
  CLI::App app{"crashkit: crash-test storage daemons and check nothing acknowledged is lost"};
  app.footer(
      "Exit codes: 0 no findings, 1 at least one finding, 2 usage or spec error, "
      "3 harness error.");
  app.require_subcommand(1);
  std::vector<std::pair<CLI::App*, std::function<int()>>> commands;
  for (auto add : {crashkit::cli::add_run_command, crashkit::cli::add_discover_command,
                   crashkit::cli::add_points_command, crashkit::cli::add_matrix_command,
                   crashkit::cli::add_workload_command, crashkit::cli::add_verify_command}) {
    auto before = app.get_subcommands({}).size();
    auto fn = add(app);
    commands.emplace_back(app.get_subcommands({})[before], std::move(fn));
  }
  int code = crashkit::exit_code::ok;
  try {
    app.parse(argc, argv);
    for (auto& [cmd, fn] : commands)
      if (cmd->parsed()) code = fn();
  } catch (const CLI::CallForHelp& e) {
    code = app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::string what = e.what();
    fmt::print(stderr, "crashkit: {}; see crashkit --help\n", what);
    code = crashkit::exit_code::usage;
  }
  crashkit::stop_sentinel();
  return code;
}
