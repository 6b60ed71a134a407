// Containment: the set of every process one part of a cell started, and all their descendants,
// whatever they did to leave (setsid(), double fork). "Stop" kills the whole set.
//
//   Containment box = Containment::create();
//   SpawnOptions s{.argv = argv, .env = env, .containment = &box};   // every spawn joins it
//   ... Child::spawn(s) ...
//   int left = box.kill_all({child.pid()});   // helpers still alive, now killed and reaped
//
// Two ways, chosen once per process:
// - cgroup: a cgroup v2 directory of its own under the harness's cgroup, where crashkit may
//   create one (root, or a delegated subtree). Each spawned process is created in it
//   (clone3 CLONE_INTO_CGROUP) or joins it between fork and exec; kill_all SIGKILLs its members
//   until none is left. Nothing escapes, not even a process that clears its environment.
// - marker: otherwise. Each spawned process gets CRASHKIT_CELL=<harness pid>.<n> in its
//   environment, inherited by its descendants; kill_all freezes (SIGSTOP) and kills every process
//   that carries it. A descendant that execs with a cleared environment escapes this mode.
// CRASHKIT_CONTAINMENT=marker in the harness's environment forces the marker way (tests, or a
// cgroup tree crashkit should not touch). The sentinel kills both sets when the harness dies.
//
// Thread-safety: one Containment is used by one thread at a time; different ones are independent.
#pragma once

#include <sys/types.h>

#include <initializer_list>
#include <string>
#include <vector>

namespace crashkit {

class Containment {
 public:
  enum class Mode { cgroup, marker };

  // Never fails: without a usable cgroup v2 hierarchy, the marker way.
  static Containment create();
  // The way every Containment of this process uses (decided on first use).
  static Mode process_mode();

  Mode mode() const { return mode_; }
  // "CRASHKIT_CELL=<harness pid>.<n>": added to every spawned process's environment.
  const std::string& marker() const { return marker_; }
  // cgroup mode: an O_WRONLY fd of the cgroup's cgroup.procs (a spawned child writes "0" to it
  // before exec); -1 in marker mode.
  int procs_fd() const { return procs_fd_; }
  // cgroup mode: an O_PATH fd of the cgroup's directory (for clone3 CLONE_INTO_CGROUP); -1 in
  // marker mode.
  int dir_fd() const { return dir_fd_; }
  // cgroup mode: the cgroup's directory; empty in marker mode.
  const std::string& cgroup_dir() const { return cgroup_dir_; }
  // "cgroup <path>" or "marker CRASHKIT_CELL=...", for logs.
  std::string describe() const;

  // SIGKILLs every live member, and reaps those that became this process's children (crashkit
  // is a subreaper) except `owned` (a Child or Daemon reaps those itself). Returns how many were
  // alive, not counting `owned`. Bounded (a few seconds at most).
  int kill_all(std::initializer_list<pid_t> owned = {}) const;

  Containment(Containment&& other) noexcept;
  Containment& operator=(Containment&& other) noexcept;
  Containment(const Containment&) = delete;
  Containment& operator=(const Containment&) = delete;
  ~Containment();  // kill_all(), then the cgroup directory is removed

 private:
  Containment() = default;
  Mode mode_ = Mode::marker;
  std::string marker_;
  std::string cgroup_dir_;  // empty in marker mode
  int procs_fd_ = -1;
  int members_fd_ = -1;  // cgroup.procs again, O_RDONLY: re-read from offset 0
  int dir_fd_ = -1;

  std::vector<pid_t> kill_cgroup_members(std::initializer_list<pid_t> owned) const;
  void reap_cgroup_zombies(std::initializer_list<pid_t> owned) const;
  std::vector<pid_t> kill_marked(std::initializer_list<pid_t> owned) const;
};

// The cgroup directory under which this harness process creates its containments
// ("<cgroup2 mount><own cgroup>/crashkit-<pid>"), or empty when the marker way is used.
// Computed once; the sentinel copies it at start-up.
const std::string& containment_cgroup_base();

}  // namespace crashkit
