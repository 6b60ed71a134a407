#include "crashkit/harness/sentinel.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

namespace crashkit {
namespace {

struct Record {
  char op;  // 'G' watch group, 'g' forget group, 'P' watch pid, 'p' forget pid
  pid_t id;
};

std::atomic<int> g_write_fd{-1};
std::atomic<pid_t> g_pid{-1};

constexpr int kMaxIds = 8192;

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
