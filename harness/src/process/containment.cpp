// Containment: a cgroup v2 directory per containment where crashkit may create one, an inherited
// environment marker otherwise (see the header for the contract).
#include "crashkit/harness/containment.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string_view>
#include <vector>

#include "crashkit/harness/child.hpp"
#include "crashkit/harness/sentinel.hpp"
#include "process/clone_into_cgroup.hpp"
#include "process/pidfd.hpp"
#include "process/proc_scan.hpp"
#include "process/process_tree.hpp"

namespace crashkit {
namespace {

std::atomic<unsigned> g_next{0};

// The pids in a cgroup.procs file open as `fd`, read afresh from offset 0 (a held fd re-reads
// the current members: cheaper than opening the file again, which allocates a task iterator).
std::vector<pid_t> read_pids(int fd) {
  std::vector<pid_t> out;
  char buf[4096];
  long pid = -1;  // the number being parsed, across reads
  for (off_t at = 0;;) {
    ssize_t n = ::pread(fd, buf, sizeof buf, at);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    at += n;
    for (ssize_t i = 0; i < n; ++i) {
      if (buf[i] >= '0' && buf[i] <= '9') {
        pid = (pid < 0 ? 0 : pid * 10) + (buf[i] - '0');
      } else if (pid >= 0) {
        out.push_back(static_cast<pid_t>(pid));
        pid = -1;
      }
    }
  }
  if (pid >= 0) out.push_back(static_cast<pid_t>(pid));
  return out;
}

// Whether any child of this process (of any of its threads) has exited and is not yet reaped,
// peeked at with WNOWAIT: nothing is reaped. An owned child counts too, so callers that reap
// their own first (Daemon::kill) skip the scan below in the common case.
bool any_zombie_child() {
  siginfo_t si{};
  if (::waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) != 0) return false;  // ECHILD
  return si.si_pid != 0;
}

// This process's cgroup v2 directory: "<cgroup2 mount point><path in /proc/self/cgroup>", or
// empty without a cgroup2 mount (a v1-only system) or with one that does not show our cgroup.
std::string own_cgroup_dir() {
  std::ifstream cg("/proc/self/cgroup");
  std::string own;
  for (std::string line; std::getline(cg, line);)
    if (line.rfind("0::", 0) == 0) own = line.substr(3);
  if (own.empty()) return {};
  std::ifstream mi("/proc/self/mountinfo");
  for (std::string line; std::getline(mi, line);) {
    auto dash = line.find(" - ");
    if (dash == std::string::npos || line.compare(dash + 3, 8, "cgroup2 ") != 0) continue;
    // "<id> <parent> <major:minor> <root> <mount point> ...": fields 4 and 5.
    std::vector<std::string> f;
    std::size_t at = 0;
    while (f.size() < 5 && at < dash) {
      auto sp = line.find(' ', at);
      f.push_back(line.substr(at, sp - at));
      at = sp + 1;
    }
    if (f.size() < 5 || f[4].find('\\') != std::string::npos) continue;  // escaped: not ours
    const std::string& root = f[3];
    if (root != "/" && own.rfind(root, 0) != 0) continue;
    std::string rel = root == "/" ? own : own.substr(root.size());
    return rel == "/" || rel.empty() ? f[4] : f[4] + rel;
  }
  return {};
}

// Runs in the clone3 child.
CRASHKIT_CHILD_SIDE int exit_at_once(void*) {
  _exit(0);
}

// Reaps `pid`; true if it exited with 0.
bool exited_cleanly(pid_t pid) {
  int status = 1;
  while (pid > 0 && ::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// A throw-away child started inside `probe` (clone3 CLONE_INTO_CGROUP), as the target's starts
// will be. It never migrates; a child that moves itself in by writing cgroup.procs takes the
// kernel's threadgroup write lock (an RCU grace period), which was about 0.7 ms of a 10 ms
// `crashkit run --cycles 1`. 1 or 0: did it start and exit there; -1 when this kernel, sandbox
// or architecture has no clone3 into a cgroup (clone_into_cgroup_unsupported), as a spawn would
// find it.
int clone_into(const std::string& probe) {
  int dir = ::open(probe.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return 0;
  sigset_t all, old;
  sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);  // as for vfork
  int pidfd = -1;
  pid_t pid = clone_vfork_into_cgroup(dir, &pidfd, exit_at_once, nullptr);
  const int e = errno;
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  ::close(dir);
  if (pidfd >= 0) ::close(pidfd);
  if (pid < 0) return clone_into_cgroup_unsupported(e) ? -1 : 0;
  return exited_cleanly(pid) ? 1 : 0;
}

// Can a child of ours join a cgroup under `base`? Tried once with a throw-away child: the rules
// (write access to the common ancestor's cgroup.procs, no controllers in the way) are the
// kernel's to judge. It is started the way Child::spawn will start the target: inside, with
// clone3, or where that is unsupported, moving itself in.
bool child_can_join(const std::string& base) {
  const std::string probe = base + "/probe";
  if (::mkdir(probe.c_str(), 0755) != 0 && errno != EEXIST) return false;
  int ok = clone_into(probe);
  if (ok < 0) {
    ok = 0;
    int fd = ::open((probe + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
      pid_t pid = ::fork();  // the child only writes and _exits: safe in a threaded process
      if (pid == 0) _exit(::write(fd, "0", 1) == 1 ? 0 : 1);
      ok = exited_cleanly(pid) ? 1 : 0;
      ::close(fd);
    }
  }
  ::rmdir(probe.c_str());
  return ok == 1;
}

std::string make_base() {
  const char* forced = std::getenv("CRASHKIT_CONTAINMENT");
  if (forced != nullptr && std::string_view(forced) == "marker") return {};
  std::string own = own_cgroup_dir();
  if (own.empty()) return {};
  std::string base = fmt::format("{}/crashkit-{}", own, getpid());
  if (::mkdir(base.c_str(), 0755) != 0 && errno != EEXIST) return {};
  if (!child_can_join(base)) {
    ::rmdir(base.c_str());
    return {};
  }
  return base;
}

// Removes `dir` and every directory below it, deepest first. A crashkit that one of the cell's
// commands ran (`crashkit verify` in a check, a nested `crashkit run`) makes its own cgroup
// directories inside the cell's, and when it is killed nothing removes them: the cell's directory
// would then stay in the harness's cgroup for good (rmdir: EBUSY). A directory that still holds
// a process stays.
void remove_cgroup_tree(const std::filesystem::path& dir) {
  std::error_code ec;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (it->is_directory(ec) && !it->is_symlink(ec)) remove_cgroup_tree(it->path());
  ::rmdir(dir.c_str());
}

bool owned_pid(std::initializer_list<pid_t> owned, pid_t p) {
  return std::find(owned.begin(), owned.end(), p) != owned.end();
}

// SIGKILLs `members` (already stopped or in a killed cgroup), waits until each has exited (so
// its own children were handed to us, the subreaper), and reaps those that are ours.
void kill_members(const std::vector<pid_t>& members, std::initializer_list<pid_t> owned) {
  std::vector<int> fds;
  for (pid_t p : members) fds.push_back(open_pidfd(p));
  for (pid_t p : members) ::kill(p, SIGKILL);
  const long deadline = proc_scan::now_ms() + 5000;
  for (std::size_t i = 0; i < fds.size(); ++i) {
    if (fds[i] < 0) continue;
    pollfd pfd{fds[i], POLLIN, 0};
    long left = deadline - proc_scan::now_ms();
    if (left > 0) ::poll(&pfd, 1, static_cast<int>(left));
    ::close(fds[i]);
  }
  for (pid_t p : members) {
    int status = 0;
    if (!owned_pid(owned, p)) ::waitpid(p, &status, WNOHANG);  // ECHILD: not ours
  }
}

}  // namespace

const std::string& containment_cgroup_base() {
  // Never destroyed: the atexit handler below runs after static destructors of objects
  // constructed before it was registered, and reads the path.
  static const std::string& base = *new std::string([] {
    std::string b = make_base();
    // Empty by now at a normal exit (each Containment removed its directory).
    if (!b.empty()) std::atexit([] { ::rmdir(containment_cgroup_base().c_str()); });
    return b;
  }());
  return base;
}

Containment::Mode Containment::process_mode() {
  return containment_cgroup_base().empty() ? Mode::marker : Mode::cgroup;
}

Containment Containment::create() {
  Containment c;
  const unsigned n = ++g_next;
  c.marker_ = fmt::format("CRASHKIT_CELL={}.{}", getpid(), n);
  const std::string& base = containment_cgroup_base();
  if (base.empty()) return c;
  std::string dir = fmt::format("{}/{}", base, n);
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) return c;
  const int procs = ::open((dir + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
  const int members = ::open((dir + "/cgroup.procs").c_str(), O_RDONLY | O_CLOEXEC);
  const int dirfd = ::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (procs < 0 || members < 0 || dirfd < 0) {
    for (int fd : {procs, members, dirfd})
      if (fd >= 0) ::close(fd);
    ::rmdir(dir.c_str());
    return c;
  }
  c.mode_ = Mode::cgroup;
  c.cgroup_dir_ = std::move(dir);
  c.procs_fd_ = procs;
  c.members_fd_ = members;
  c.dir_fd_ = dirfd;
  return c;
}

std::string Containment::describe() const {
  return mode_ == Mode::cgroup ? "cgroup " + cgroup_dir_ : "marker " + marker_;
}

// cgroup mode. Kill to a fixpoint: read cgroup.procs, SIGKILL and wait for every member, read
// again. A member killed while forking either fails the fork (a fatal signal is pending) or
// has linked its child into the cgroup before it can die, so the next read finds the child;
// an empty read means no live process is left.
//
// Why not cgroup.kill: on Linux with cgroup kill sequence numbers (since early 2025; seen on
// 6.18), clone3(CLONE_INTO_CGROUP) compares the target cgroup's count with the
// *parent's* cgroup's, so once a cgroup has been killed every child later created in it is
// SIGKILLed at birth. Each start of a cell's target is created in the same cgroup.
std::vector<pid_t> Containment::kill_cgroup_members(std::initializer_list<pid_t> owned) const {
  std::vector<pid_t> all;
  for (int round = 0; round < 100; ++round) {
    std::vector<pid_t> now = read_pids(members_fd_);
    if (now.empty()) break;
    kill_members(now, owned);
    for (pid_t p : now)
      if (std::find(all.begin(), all.end(), p) == all.end()) all.push_back(p);
  }
  return all;
}

// cgroup mode: reaps this process's children that were members (a zombie still names its
// cgroup in /proc/PID/cgroup), including ones that had exited before kill_all and were handed to
// us, the subreaper, when their parent died.
void Containment::reap_cgroup_zombies(std::initializer_list<pid_t> owned) const {
  if (!any_zombie_child()) return;  // no scan of /proc
  const std::string suffix = cgroup_dir_.substr(cgroup_dir_.rfind("/crashkit-"));
  for (pid_t c : children_of(getpid())) {
    if (owned_pid(owned, c)) continue;
    std::ifstream in(fmt::format("/proc/{}/cgroup", c));
    std::string line, last;
    while (std::getline(in, line))
      if (line.rfind("0::", 0) == 0) last = line;
    if (last.size() >= suffix.size() &&
        last.compare(last.size() - suffix.size(), suffix.size(), suffix) == 0) {
      int status = 0;
      while (::waitpid(c, &status, 0) < 0 && errno == EINTR) {
      }
    }
  }
}

// marker mode. Freeze to a fixpoint: a member may fork between the scan and its SIGSTOP; its
// child carries the marker and is found by the next pass. Then kill them all.
std::vector<pid_t> Containment::kill_marked(std::initializer_list<pid_t> owned) const {
  std::vector<pid_t> members;
  const std::string needle = marker_ + '\0';
  static thread_local char dents[8192];
  static thread_local char env[64 << 10];
  const pid_t self = getpid(), sentinel = sentinel_pid();
  for (int pass = 0; pass < 100; ++pass) {
    std::size_t before = members.size();
    proc_scan::for_each_pid(
        [&](pid_t p) {
          if (p == self || p == sentinel) return;
          if (std::find(members.begin(), members.end(), p) != members.end()) return;
          if (!proc_scan::environ_has(p, needle.data(), needle.size(), env, sizeof env)) return;
          if (::kill(p, SIGSTOP) == 0) members.push_back(p);
        },
        dents, sizeof dents);
    if (members.size() == before) break;
  }
  if (!members.empty()) kill_members(members, owned);
  return members;
}

int Containment::kill_all(std::initializer_list<pid_t> owned) const {
  std::vector<pid_t> members;
  if (mode_ == Mode::cgroup) {
    members = kill_cgroup_members(owned);
    reap_cgroup_zombies(owned);
  } else {
    members = kill_marked(owned);
  }
  return static_cast<int>(
      std::count_if(members.begin(), members.end(), [&](pid_t p) { return !owned_pid(owned, p); }));
}

Containment::Containment(Containment&& o) noexcept
    : mode_(o.mode_),
      marker_(std::move(o.marker_)),
      cgroup_dir_(std::move(o.cgroup_dir_)),
      procs_fd_(std::exchange(o.procs_fd_, -1)),
      members_fd_(std::exchange(o.members_fd_, -1)),
      dir_fd_(std::exchange(o.dir_fd_, -1)) {
  o.cgroup_dir_.clear();
  o.marker_.clear();
}

Containment& Containment::operator=(Containment&& o) noexcept {
  if (this != &o) {
    this->~Containment();
    new (this) Containment(std::move(o));
  }
  return *this;
}

Containment::~Containment() {
  if (marker_.empty()) return;  // moved from
  kill_all();
  for (int fd : {procs_fd_, members_fd_, dir_fd_})
    if (fd >= 0) ::close(fd);
  if (!cgroup_dir_.empty() && ::rmdir(cgroup_dir_.c_str()) != 0 && errno == EBUSY)
    remove_cgroup_tree(cgroup_dir_);
}

}  // namespace crashkit
