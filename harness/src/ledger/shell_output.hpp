// Internal: run a shell command and keep what it printed, for the ledger tools. Not installed.
//
//   auto r = run_shell_output("redis-cli get k1");  // Result<ShellOutput>
//   if (r && r->status.success()) use(r->out);
#pragma once

#include <string>

#include "crashkit/harness/exit_status.hpp"
#include "crashkit/harness/result.hpp"

namespace crashkit {

struct ShellOutput {
  ExitStatus status = ExitStatus::exited(0);
  std::string out;          // all of stdout (up to 256 MiB; more is an error)
  std::string stderr_line;  // the last non-empty line of stderr, for messages
};

// /bin/sh -c `command`, with the harness's environment (crash-point variables dropped), stdin
// /dev/null, in its own process group; blocks until it exits and both pipes are at EOF.
// Errors: the shell cannot start, or stdout is larger than the cap.
Result<ShellOutput> run_shell_output(const std::string& command);

}  // namespace crashkit
