// A spawned Child after its start: moving it, waiting for it, signalling it, stopping it and
// reaping it and its process group (child.cpp starts it).
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include "crashkit/harness/child.hpp"
#include "crashkit/harness/sentinel.hpp"
#include "process/pidfd.hpp"

namespace crashkit {

Child::Child(Child&& other) noexcept
    : pid_(other.pid_),
      pidfd_(other.pidfd_),
      status_(other.status_),
      group_cleared_(other.group_cleared_),
      sentinel_watched_(other.sentinel_watched_) {
  other.pid_ = -1;
  other.pidfd_ = -1;
}

Child& Child::operator=(Child&& other) noexcept {
  if (this != &other) {
    release();
    pid_ = other.pid_;
    pidfd_ = other.pidfd_;
    status_ = other.status_;
    group_cleared_ = other.group_cleared_;
    sentinel_watched_ = other.sentinel_watched_;
    other.pid_ = -1;
    other.pidfd_ = -1;
  }
  return *this;
}

Child::~Child() {
  release();
}

void Child::release() {
  if (pid_ <= 0) return;
  kill_and_reap();
  pid_ = -1;
}

ExitStatus Child::reap_blocking() {
  int wstatus = 0;
  while (waitpid(pid_, &wstatus, 0) < 0) {
    if (errno != EINTR) {  // someone else reaped it: we cannot know how it ended
      wstatus = 0;
      break;
    }
  }
  status_ = ExitStatus::from_wait_status(wstatus);
  if (pidfd_ >= 0) {
    close(pidfd_);
    pidfd_ = -1;
  }
  return *status_;
}

std::optional<ExitStatus> Child::try_wait() {
  if (status_) return status_;
  if (pid_ <= 0) return std::nullopt;
  int wstatus = 0;
  pid_t r = waitpid(pid_, &wstatus, WNOHANG);
  if (r == pid_) {
    status_ = ExitStatus::from_wait_status(wstatus);
    close(pidfd_);
    pidfd_ = -1;
  }
  return status_;
}

std::optional<ExitStatus> Child::wait_for(Duration timeout) {
  if (status_ || pid_ <= 0) return status_;
  const auto deadline = Clock::now() + timeout;
  while (true) {
    // poll_timeout_ms clamps at INT_MAX ms: a longer wait polls again until its deadline.
    pollfd pfd{pidfd_, POLLIN, 0};
    int n = poll(&pfd, 1, poll_timeout_ms(deadline - Clock::now()));
    if (n > 0) return reap_blocking();
    if (n < 0 && errno != EINTR) return try_wait();
    if (Clock::now() >= deadline) return try_wait();
  }
}

ExitStatus Child::wait() {
  if (status_) return *status_;
  return reap_blocking();
}

void Child::signal(int sig) {
  if (pid_ > 0 && !status_) ::kill(pid_, sig);  // unreaped: the pid cannot be reused
}

void Child::signal_group(int sig) {
  if (pid_ > 0 && !group_cleared_) ::kill(-pid_, sig);
}

Child::Stop Child::terminate_or_kill(Duration timeout) {
  Stop stop{ExitStatus::exited(0), false};
  if (!status_) {
    signal(SIGTERM);
    if (!wait_for(timeout)) {
      stop.escalated = true;
      signal_group(SIGKILL);
    }
  }
  stop.status = wait();
  clear_group();
  return stop;
}

ExitStatus Child::kill_and_reap() {
  signal_group(SIGKILL);
  ExitStatus s = wait();
  clear_group();
  return s;
}

void Child::clear_group() {
  if (group_cleared_ || pid_ <= 0) return;
  clear_process_group(pid_, sentinel_watched_);
  group_cleared_ = true;
}

}  // namespace crashkit
