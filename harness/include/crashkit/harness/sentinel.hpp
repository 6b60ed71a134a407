// The sentinel: a small process forked at harness start-up that outlives the harness for one
// purpose. When the harness dies, even by SIGKILL, its pipe to the sentinel reaches EOF and the
// sentinel SIGKILLs every process group and pid still registered, then every contained process
// (containment.hpp: the harness's cgroup subtree, and every process with its marker), so no
// daemon or helper is orphaned. start_sentinel() also decides the containment way (a probe).
//
//   int main() { crashkit::start_sentinel(); ... }   // before any thread is started
//   // Child::spawn registers each child's group; Child::clear_group forgets it.
#pragma once

#include <sys/types.h>

#include "crashkit/harness/result.hpp"

namespace crashkit {

// Forks the sentinel. Call once, early, while the process is single-threaded (fork-safety:
// the sentinel runs without exec and must not inherit another thread's locks). Idempotent.
Status start_sentinel();

// Closes the pipe (the sentinel sees EOF with nothing registered, exits) and reaps it.
// Call at normal exit so the sentinel is not left as a zombie.
void stop_sentinel();

// Register / forget a process group (by its leader's pid) or a single pid that left the group
// (a daemon that called setsid(), announced through MAINPID=). No-ops without a sentinel.
// Thread-safe and async-signal-safe: one write(2) of a fixed-size record to a pipe.
void sentinel_watch(pid_t pgid);
void sentinel_forget(pid_t pgid);
void sentinel_watch_pid(pid_t pid);
void sentinel_forget_pid(pid_t pid);

// The sentinel's pid, or -1 if none was started (tests use it to check it exits cleanly).
pid_t sentinel_pid();

}  // namespace crashkit
