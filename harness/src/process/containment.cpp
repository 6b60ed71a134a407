// Containment: a cgroup v2 directory per containment where crashkit may create one, an inherited
// environment marker otherwise (see the header for the contract).
#include "crashkit/harness/containment.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <string_view>
#include <vector>

#include "crashkit/harness/child.hpp"
#include "crashkit/harness/sentinel.hpp"
#include "process/pidfd.hpp"
#include "process/proc_scan.hpp"
#include "process/process_tree.hpp"

namespace crashkit {
namespace {

std::atomic<unsigned> g_next{0};

bool write_text(const std::string& path, std::string_view text) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  return ok;
}

std::vector<pid_t> read_pids(const std::string& path) {
  std::vector<pid_t> out;
  std::ifstream in(path);
  for (pid_t p = 0; in >> p;) out.push_back(p);
  return out;
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

// Can a child of ours join a cgroup under `base`? Tried once with a throw-away child: the rules
// (write access to the common ancestor's cgroup.procs, no controllers in the way) are the
// kernel's to judge.
bool child_can_join(const std::string& base) {
  const std::string probe = base + "/probe";
  if (::mkdir(probe.c_str(), 0755) != 0 && errno != EEXIST) return false;
  bool ok = false;
  int fd = ::open((probe + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
  if (fd >= 0) {
    pid_t pid = ::fork();  // the child only writes and _exits: safe in a threaded process
    if (pid == 0) _exit(::write(fd, "0", 1) == 1 ? 0 : 1);
    int status = 1;
    while (pid > 0 && ::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    ok = pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    ::close(fd);
  }
  ::rmdir(probe.c_str());
  return ok;
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
  int fd = ::open((dir + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    ::rmdir(dir.c_str());
    return c;
  }
  c.mode_ = Mode::cgroup;
  c.cgroup_dir_ = std::move(dir);
  c.procs_fd_ = fd;
  return c;
}

std::string Containment::describe() const {
  return mode_ == Mode::cgroup ? "cgroup " + cgroup_dir_ : "marker " + marker_;
}

int Containment::kill_all(std::initializer_list<pid_t> owned) const {
  std::vector<pid_t> members;
  if (mode_ == Mode::cgroup) {
    members = read_pids(cgroup_dir_ + "/cgroup.procs");
    if (!members.empty()) write_text(cgroup_dir_ + "/cgroup.kill", "1");
  } else {
    // Freeze to a fixpoint: a member may fork between the scan and its SIGSTOP; its child
    // carries the marker and is found by the next pass.
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
  }
  const int alive = static_cast<int>(
      std::count_if(members.begin(), members.end(), [&](pid_t p) { return !owned_pid(owned, p); }));
  if (!members.empty()) kill_members(members, owned);
  if (mode_ == Mode::cgroup) {
    // Processes forked after cgroup.procs was read died too; wait for them and reap those that
    // are ours (a zombie still names its cgroup in /proc/PID/cgroup).
    proc_scan::wait_unpopulated((cgroup_dir_ + "/cgroup.events").c_str(), 5000);
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
  return alive;
}

Containment::Containment(Containment&& o) noexcept
    : mode_(o.mode_),
      marker_(std::move(o.marker_)),
      cgroup_dir_(std::move(o.cgroup_dir_)),
      procs_fd_(o.procs_fd_) {
  o.cgroup_dir_.clear();
  o.marker_.clear();
  o.procs_fd_ = -1;
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
  if (procs_fd_ >= 0) ::close(procs_fd_);
  if (!cgroup_dir_.empty()) ::rmdir(cgroup_dir_.c_str());
}

}  // namespace crashkit
