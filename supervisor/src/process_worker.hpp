// Process workers: spawned with posix_spawn (safe from a threaded process: nothing of the
// parent runs in the child before exec), watched through a pidfd in the supervisor's poll set.
// Internal to the supervisor.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace crashkit::detail {

struct ProcessHandle {
  pid_t pid = -1;
  int pidfd = -1;  // readable once the process has ended
};

struct SpawnResult {
  ProcessHandle handle;
  std::string error;  // non-empty: could not spawn (then handle.pid == -1)
};

// argv[0] is the program path. The worker gets the daemon's environment minus the service
// manager's variables (NOTIFY_SOCKET, WATCHDOG_*, LISTEN_*) and crash-point arming, with every
// signal unblocked (the supervisor blocks SIGTERM/SIGINT/SIGHUP in its own threads).
SpawnResult spawn_process(const std::vector<std::string>& argv);

struct ProcessEnd {
  bool ended = false;   // false: still running (a spurious wake-up)
  bool normal = false;  // exit 0, or SIGTERM when `stop_requested`
  std::string reason;   // "exited with code 3", "killed by SIGSEGV"
};

// Reaps the process if it has ended (WNOHANG) and classifies its end. Closes the pidfd then.
ProcessEnd reap_process(ProcessHandle& h, bool stop_requested);

}  // namespace crashkit::detail
