// Child: one spawned process (its own process group, PDEATHSIG=SIGKILL) owned as a value.
// The destructor SIGKILLs the whole group and reaps it, so a Child never leaks a zombie.
//
//   auto c = Child::spawn({.argv = {"/usr/bin/redis-server", "--port", "0"}, .env = env});
//   if (!c) return c.error();
//   Child::Stop s = c->terminate_or_kill(5s);   // s.status.describe(), s.escalated
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "crashkit/harness/containment.hpp"
#include "crashkit/harness/credentials.hpp"
#include "crashkit/harness/duration.hpp"
#include "crashkit/harness/exit_status.hpp"
#include "crashkit/harness/resource_limit.hpp"
#include "crashkit/harness/result.hpp"

namespace crashkit {

struct SpawnOptions {
  std::vector<std::string> argv;  // argv[0] without '/' is looked up in PATH before forking
  std::vector<std::string> env;   // complete environment, "KEY=VALUE"
  std::filesystem::path cwd;      // empty: inherit
  int stdin_fd = -1;              // -1: /dev/null. Caller keeps ownership of all three.
  int stdout_fd = -1;
  int stderr_fd = -1;
  std::optional<Credentials> user;  // drop to this user before exec (needs root)
  // io_uring_setup fails with ENOSYS in the child and everything it starts (a seccomp filter,
  // with no_new_privs): its I/O would bypass the power-loss shim, so daemons fall back.
  bool deny_io_uring = false;
  // setrlimit(2) each, before dropping privileges (so root may raise a hard limit).
  std::vector<ResourceLimit> limits;
  // A cgroup v1 hierarchy's cgroup.procs (O_WRONLY) to join too, after the containment's (the
  // memory limit on a hybrid system); -1: none. Not owned.
  int memory_cgroup_procs = -1;
  // Joins this containment (its cgroup, or its environment marker) before exec, so that every
  // descendant can be killed with it. Not owned; must outlive the spawn call.
  const Containment* containment = nullptr;
};

class Child {
 public:
  // Which step of the child's start failed, reported through the vfork-shared frame.
  enum class Stage {
    none,
    process_group,
    cgroup,
    death_signal,
    signals,
    dup_stdio,
    limits,
    credentials,
    chdir,
    seccomp,
    exec
  };

  // Spawns with vfork; between vfork and exec only system calls run (child.cpp says why and
  // which). Errors: usage (target missing / not executable / exec failed) or harness (fork,
  // cgroup or pidfd failure), each one line.
  static Result<Child> spawn(const SpawnOptions& options);

  Child(Child&& other) noexcept;
  Child& operator=(Child&& other) noexcept;
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child();  // kill_and_reap() if still owned

  pid_t pid() const { return pid_; }
  pid_t pgid() const { return pid_; }  // every Child leads its own process group
  // pidfd of the process: becomes readable (POLLIN) when it exits. -1 once reaped.
  int pidfd() const { return pidfd_; }

  // Non-blocking: reaps and returns the status if the process has exited.
  std::optional<ExitStatus> try_wait();
  // Event-driven wait (poll on the pidfd) up to timeout; reaps on exit.
  std::optional<ExitStatus> wait_for(Duration timeout);
  ExitStatus wait();
  // Status once reaped.
  std::optional<ExitStatus> status() const { return status_; }

  // Signals the process (not the group). No-op once reaped.
  void signal(int sig);
  // Signals the whole process group (safe after the leader was reaped).
  void signal_group(int sig);

  struct Stop {
    ExitStatus status;
    bool escalated = false;  // SIGTERM was ignored for `timeout`; SIGKILL was needed
  };
  // SIGTERM, wait up to timeout, then SIGKILL; finally clears the rest of the group.
  Stop terminate_or_kill(Duration timeout);
  // SIGKILL to the group, reap the leader and every group member we were left with.
  ExitStatus kill_and_reap();
  // After the leader was reaped: SIGKILL what is left of the group and reap those we own
  // (the harness is a subreaper, so orphaned group members become ours).
  void clear_group();

 private:
  Child(pid_t pid, int pidfd) : pid_(pid), pidfd_(pidfd) {}
  void release();
  ExitStatus reap_blocking();

  pid_t pid_ = -1;
  int pidfd_ = -1;
  std::optional<ExitStatus> status_;
  bool group_cleared_ = false;
  bool sentinel_watched_ = true;  // false for a process in a cgroup (see Child::spawn)
};

// Makes this process a child subreaper (idempotent), so descendants of a daemon that
// double-forks are reparented to us and can be reaped. Called by Child::spawn.
void become_subreaper();

// SIGKILLs process group `pgid` and reaps the members we own (as a subreaper, orphaned members
// become ours), until the group is empty or ~1 s passed. Forgets it in the sentinel unless told
// it was never registered there.
void clear_process_group(pid_t pgid, bool forget_in_sentinel = true);

// SIGKILLs `root` and every descendant, even those that left its process group or session
// (PostgreSQL backends call setsid()). The tree is frozen first (SIGSTOP, walking
// /proc/PID/task/TID/children until no new child appears) so nothing forks while it dies;
// then everything is SIGKILLed and reaped where it is ours (as a subreaper, orphans become
// ours). Returns how many processes were killed.
int kill_process_tree(pid_t root);

// Resolves argv[0] like execvp would, before forking: returns an absolute or relative path
// that is an executable regular file, or a usage error naming the binary and the fix.
Result<std::string> resolve_executable(const std::string& name);

}  // namespace crashkit
