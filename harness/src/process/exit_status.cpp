#include "crashkit/harness/exit_status.hpp"

#include <fmt/format.h>
#include <sys/wait.h>

#include <cstring>

namespace crashkit {

ExitStatus ExitStatus::from_wait_status(int w) {
  if (WIFEXITED(w)) return exited(WEXITSTATUS(w));
  if (WIFSIGNALED(w)) return signaled(WTERMSIG(w), WCOREDUMP(w));
  return exited(w);  // not reachable for a reaped process
}

std::string signal_name(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  if (abbrev != nullptr) return fmt::format("SIG{}", abbrev);
  return fmt::format("signal {}", sig);
}

std::string ExitStatus::describe() const {
  switch (kind_) {
    case Kind::exited:
      return fmt::format("exited with code {}", value_);
    case Kind::signaled:
      return fmt::format("killed by {}", signal_name(value_));
    case Kind::core_dumped:
      return fmt::format("killed by {} (core dumped)", signal_name(value_));
    case Kind::unknown:
      return "ended (status not ours to collect)";
  }
  return "unknown";
}

}  // namespace crashkit
