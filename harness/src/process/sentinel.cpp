#include "crashkit/harness/sentinel.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "crashkit/harness/containment.hpp"
#include "process/proc_scan.hpp"

namespace crashkit {
namespace {

struct Record {
  char op;  // 'G' watch group, 'g' forget group, 'P' watch pid, 'p' forget pid
  pid_t id;
};

std::atomic<int> g_write_fd{-1};
std::atomic<pid_t> g_pid{-1};

constexpr int kMaxIds = 8192;

// Copied before the fork, read by the sentinel: the containments' cgroup base (empty: marker
// mode) and the environment marker prefix every contained process carries.
char g_cgroup_base[1024];
char g_marker_prefix[64];

// Runs in the sentinel: SIGSTOPs every process that carries the harness's marker, to a fixpoint
// (a process may fork before its stop lands; the child carries the marker too), then SIGKILLs
// them all. Static buffers only.
void kill_marked() {
  static pid_t found[kMaxIds];
  static char dents[8192];
  static char env[64 << 10];
  int n = 0;
  const std::size_t len = std::strlen(g_marker_prefix);
  for (int pass = 0; pass < 100; ++pass) {
    const int before = n;
    proc_scan::for_each_pid(
        [&](pid_t p) {
          if (p == getpid() || n == kMaxIds) return;
          for (int i = 0; i < n; ++i)
            if (found[i] == p) return;
          if (proc_scan::environ_has(p, g_marker_prefix, len, env, sizeof env) &&
              kill(p, SIGSTOP) == 0)
            found[n++] = p;
        },
        dents, sizeof dents);
    if (n == before) break;
  }
  for (int i = 0; i < n; ++i) kill(found[i], SIGKILL);
}

// Runs in the sentinel: kills the whole cgroup subtree, waits until it is empty, removes the
// cell directories and the base.
void clear_cgroup_base() {
  static char path[sizeof g_cgroup_base + 300];
  static char dents[8192];
  auto join = [](const char* dir, const char* name) {
    std::size_t a = std::strlen(dir), b = std::strlen(name);
    if (a + 1 + b >= sizeof path) return false;
    std::memcpy(path, dir, a);
    path[a] = '/';
    std::memcpy(path + a + 1, name, b + 1);
    return true;
  };
  if (!join(g_cgroup_base, "cgroup.kill")) return;
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return;  // gone: nothing was left
  while (write(fd, "1", 1) < 0 && errno == EINTR) {
  }
  close(fd);
  if (join(g_cgroup_base, "cgroup.events")) proc_scan::wait_unpopulated(path, 5000);
  int dir = open(g_cgroup_base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    long got;
    while ((got = syscall(SYS_getdents64, dir, dents, sizeof dents)) > 0) {
      for (long off = 0; off < got;) {
        auto* d = reinterpret_cast<struct dirent64*>(dents + off);
        off += d->d_reclen;
        if (d->d_type == DT_DIR && d->d_name[0] != '.' && join(g_cgroup_base, d->d_name))
          rmdir(path);
      }
    }
    close(dir);
  }
  rmdir(g_cgroup_base);
}

// Runs in the forked sentinel: fixed arrays, no allocation, never returns.
[[noreturn]] void sentinel_main(int read_fd) {
  signal(SIGINT, SIG_IGN);
  signal(SIGTERM, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  signal(SIGPIPE, SIG_IGN);
  static pid_t groups[kMaxIds];
  static pid_t pids[kMaxIds];
  int ngroups = 0;
  int npids = 0;
  auto add = [](pid_t* set, int& n, pid_t id) {
    for (int i = 0; i < n; ++i)
      if (set[i] == id) return;
    if (n < kMaxIds) set[n++] = id;
  };
  auto remove = [](pid_t* set, int& n, pid_t id) {
    for (int i = 0; i < n; ++i)
      if (set[i] == id) {
        set[i] = set[--n];
        return;
      }
  };
  Record r{};
  while (true) {
    ssize_t got = read(read_fd, &r, sizeof r);
    if (got < 0 && errno == EINTR) continue;
    if (got != static_cast<ssize_t>(sizeof r)) break;  // EOF: the harness is gone
    switch (r.op) {
      case 'G':
        add(groups, ngroups, r.id);
        break;
      case 'g':
        remove(groups, ngroups, r.id);
        break;
      case 'P':
        add(pids, npids, r.id);
        break;
      case 'p':
        remove(pids, npids, r.id);
        break;
      default:
        break;
    }
  }
  for (int i = 0; i < ngroups; ++i) kill(-groups[i], SIGKILL);
  for (int i = 0; i < npids; ++i) kill(pids[i], SIGKILL);
  // Descendants that left every group and tree the harness knew of (setsid, double fork).
  kill_marked();
  if (g_cgroup_base[0] != '\0') clear_cgroup_base();
  _exit(0);
}

void send(char op, pid_t id) {
  int fd = g_write_fd.load(std::memory_order_relaxed);
  if (fd < 0 || id <= 0) return;
  Record r{op, id};
  while (write(fd, &r, sizeof r) < 0 && errno == EINTR) {
  }
}

}  // namespace

Status start_sentinel() {
  if (g_write_fd.load() >= 0) return ok();
  const std::string& base = containment_cgroup_base();  // probes with a child: before the fork
  if (base.size() < sizeof g_cgroup_base) std::memcpy(g_cgroup_base, base.c_str(), base.size() + 1);
  proc_scan::format_path(g_marker_prefix, "CRASHKIT_CELL=", getpid(), ".");
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0)
    return harness_error(fmt::format("sentinel: pipe failed: {}", std::strerror(errno)));
  pid_t pid = fork();
  if (pid < 0) {
    int e = errno;
    close(p[0]);
    close(p[1]);
    return harness_error(fmt::format("sentinel: fork failed: {}", std::strerror(e)));
  }
  if (pid == 0) {
    // Own process group: a Ctrl-C to the harness's group must not take the sentinel first.
    setpgid(0, 0);
    close(p[1]);
    if (p[0] != 3) {
      dup2(p[0], 3);
      close(p[0]);
    }
    close_range(4, ~0U, 0);
    sentinel_main(3);
  }
  close(p[0]);
  g_pid.store(pid);
  g_write_fd.store(p[1]);
  return ok();
}

void stop_sentinel() {
  int fd = g_write_fd.exchange(-1);
  if (fd < 0) return;
  close(fd);
  pid_t pid = g_pid.exchange(-1);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
}

void sentinel_watch(pid_t pgid) {
  send('G', pgid);
}
void sentinel_forget(pid_t pgid) {
  send('g', pgid);
}
void sentinel_watch_pid(pid_t pid) {
  send('P', pid);
}
void sentinel_forget_pid(pid_t pid) {
  send('p', pid);
}
pid_t sentinel_pid() {
  return g_pid.load();
}

}  // namespace crashkit
