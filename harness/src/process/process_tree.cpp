// Killing what a daemon leaves behind: a process tree whose helpers left the group
// (kill_process_tree: freeze with SIGSTOP to a fixpoint, then SIGKILL and reap), and the
// members of a process group that outlive its leader (clear_process_group).
#include "process/process_tree.hpp"

#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <vector>

#include "crashkit/harness/child.hpp"
#include "crashkit/harness/sentinel.hpp"
#include "process/pidfd.hpp"

namespace crashkit {

std::vector<pid_t> children_of(pid_t pid) {
  std::vector<pid_t> out;
  std::error_code ec;
  auto task_dir = std::filesystem::path("/proc") / std::to_string(pid) / "task";
  for (const auto& task : std::filesystem::directory_iterator(task_dir, ec)) {
    FILE* f = std::fopen((task.path() / "children").c_str(), "r");
    if (f == nullptr) continue;
    int child = 0;
    while (std::fscanf(f, "%d", &child) == 1) out.push_back(child);
    std::fclose(f);
  }
  return out;
}

namespace {

char process_state(pid_t pid) {
  FILE* f = std::fopen(fmt::format("/proc/{}/stat", pid).c_str(), "r");
  if (f == nullptr) return 'X';
  char buf[512];
  std::size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  buf[n] = '\0';
  const char* paren = std::strrchr(buf, ')');
  return paren != nullptr && paren[1] == ' ' ? paren[2] : 'X';
}

}  // namespace

int kill_process_tree(pid_t root) {
  if (root <= 1 || root == getpid()) return 0;
  std::vector<pid_t> frozen;
  std::vector<pid_t> frontier{root};
  // Freeze to a fixpoint: a process may fork between our read of its children and the
  // moment SIGSTOP takes effect, so every frozen process is re-read once it is stopped.
  for (int pass = 0; pass < 100 && !frontier.empty(); ++pass) {
    for (pid_t p : frontier) {
      if (std::find(frozen.begin(), frozen.end(), p) != frozen.end()) continue;
      if (::kill(p, SIGSTOP) == 0) frozen.push_back(p);
    }
    frontier.clear();
    for (pid_t p : frozen) {
      // Wait (bounded) until the stop is in effect, so its children list is final.
      for (int i = 0; i < 1000; ++i) {
        char st = process_state(p);
        if (st == 'T' || st == 't' || st == 'Z' || st == 'X') break;
        sched_yield();
      }
      for (pid_t c : children_of(p))
        if (std::find(frozen.begin(), frozen.end(), c) == frozen.end()) frontier.push_back(c);
    }
  }
  int root_fd = open_pidfd(root);
  for (pid_t p : frozen) ::kill(p, SIGKILL);
  if (root_fd >= 0) {
    // Its children are reparented to us only once it has exited; it stays unreaped for its
    // owner (a Child) to collect the status.
    pollfd pfd{root_fd, POLLIN, 0};
    poll(&pfd, 1, 5000);
    close(root_fd);
  }
  // Breadth-first order: each parent is reaped (so its children are ours) before them.
  for (pid_t p : frozen) {
    if (p == root) continue;
    int w = 0;
    // Ours once its killed parent is gone; ECHILD means another process reaped it.
    while (waitpid(p, &w, 0) < 0 && errno == EINTR) {
    }
  }
  return static_cast<int>(frozen.size());
}

void clear_process_group(pid_t pgid, bool forget_in_sentinel) {
  if (pgid <= 1 || pgid == getpgrp()) return;
  // Members may outlive the leader (a daemon's helpers). As a subreaper we inherit them once
  // their parent dies. The kernel reparents asynchronously and offers no event for "group
  // empty", so the loop re-checks with a short pause, bounded at ~1 s.
  for (int round = 0; round < 1000; ++round) {
    if (::kill(-pgid, SIGKILL) != 0 && errno == ESRCH) break;
    int wstatus = 0;
    bool reaped = false;
    while (waitpid(-pgid, &wstatus, WNOHANG) > 0) reaped = true;
    if (!reaped) {
      struct timespec ts {
        0, 1'000'000
      };
      nanosleep(&ts, nullptr);
    }
  }
  if (forget_in_sentinel) sentinel_forget(pgid);
}

}  // namespace crashkit
