#include "process/shell_command.hpp"

#include <fmt/format.h>
#include <signal.h>

namespace crashkit {

std::string ShellResult::describe() const {
  std::string head = timed_out ? std::string("timed out") : status.describe();
  std::string line = last_line(output_tail);
  return line.empty() ? head : fmt::format("{}: {}", head, line);
}

Result<ShellProcess> ShellProcess::start(const ShellRun& run) {
  auto cap = OutputCapture::open(run.log, run.capture_limit);
  if (!cap) return cap.error();
  SpawnOptions o;
  o.argv = {"/bin/sh", "-c", run.command};
  o.env = run.env;
  o.cwd = run.cwd;
  o.user = run.user;
  o.stdout_fd = cap->write_fd();
  o.stderr_fd = cap->write_fd();
  o.containment = run.containment;
  auto deadline = Clock::now() + run.timeout;
  auto child = Child::spawn(o);
  cap->close_write_end();
  if (!child) return child.error();
  return ShellProcess(std::move(*child), std::move(*cap), deadline, run.containment);
}

ShellResult ShellProcess::finish(NotifyReceiver* rx) {
  ShellResult r;
  if (rx != nullptr && child_.pidfd() >= 0) {
    int watch[1] = {child_.pidfd()};
    rx->wait([](const NotifyState&) { return false; }, deadline_, watch);
  }
  auto left = deadline_ - Clock::now();
  auto st = child_.wait_for(std::max(left, Duration::zero()));
  if (!st) {
    r.timed_out = true;
    st = child_.kill_and_reap();
    if (containment_ != nullptr) containment_->kill_all();
  } else {
    // Background jobs the command left behind: those that left its group (setsid) too.
    if (containment_ != nullptr) r.left_behind = containment_->kill_all();
    child_.clear_group();
  }
  r.status = *st;
  r.output_tail = capture_.finish();
  return r;
}

Result<ShellResult> run_shell(const ShellRun& run, NotifyReceiver* rx) {
  auto p = ShellProcess::start(run);
  if (!p) return p.error();
  return p->finish(rx);
}

}  // namespace crashkit
