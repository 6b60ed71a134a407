#include <fmt/format.h>

#include <memory>

#include "crashkit/harness/child.hpp"
#include "crashkit/harness/compiled_points.hpp"
#include "crashkit/harness/outcome.hpp"
#include "run_command.hpp"

namespace crashkit::cli {

std::function<int()> add_points_command(CLI::App& app) {
  auto binary = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand("points",
                                     "List the crash points compiled into BINARY "
                                     "(without running it).");
  cmd->add_option("binary", *binary, "the daemon executable (path or name in PATH)")->required();
  return [binary] {
    auto exe = resolve_executable(*binary);
    if (!exe) {
      fmt::print(stderr, "crashkit: {}\n", exe.error().message);
      return exit_code::usage;
    }
    auto points = read_compiled_points(*exe);
    if (!points) {
      fmt::print(stderr, "crashkit: {}\n", points.error().message);
      return exit_code::usage;
    }
    for (const auto& p : *points) fmt::print("{}\t{}\n", p.kind == 'F' ? "fault" : "point", p.name);
    if (points->empty()) fmt::print(stderr, "crashkit: {} has no crash points\n", *exe);
    return exit_code::ok;
  };
}

}  // namespace crashkit::cli
