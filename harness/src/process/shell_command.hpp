// Internal (not installed): ShellCommand runs a workload, set-up or checker command line with
// /bin/sh -c (like a Makefile recipe), in its own process group, output (stdout+stderr) captured to
// a file, bounded by a timeout after which the whole group is killed.
//
//   auto r = run_shell({.command = "redis-cli -s {run_dir}/r.sock get k", .env = env,
//                       .log = run.artifacts / "check.0.log", .timeout = 60s});
//   if (r && !r->status.success()) report(r->output_tail);
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "crashkit/harness/child.hpp"
#include "crashkit/harness/duration.hpp"
#include "crashkit/harness/notify_receiver.hpp"
#include "crashkit/harness/output_capture.hpp"

namespace crashkit {

struct ShellRun {
  std::string command;  // placeholders already applied
  std::vector<std::string> env;
  std::optional<Credentials> user;
  std::filesystem::path cwd;
  std::filesystem::path log;
  Duration timeout = std::chrono::minutes(10);
  std::size_t capture_limit = 8 << 20;
  // The command and everything it starts join it; finish() kills what is left. Not owned.
  const Containment* containment = nullptr;
};

struct ShellResult {
  ExitStatus status = ExitStatus::exited(0);
  bool timed_out = false;
  std::string output_tail;
  int left_behind = 0;  // processes it started that outlived it (setsid, nohup ... &): killed
  // "exited with code 1: <last output line>" / "timed out after 60s".
  std::string describe() const;
};

// A started command that the caller waits on (e.g. while a fault is applied mid-workload).
class ShellProcess {
 public:
  static Result<ShellProcess> start(const ShellRun& run);
  int pidfd() const { return child_.pidfd(); }
  pid_t pgid() const { return child_.pgid(); }  // the command's own process group
  // Waits up to the run's timeout (from start); kills the group on timeout. With `rx`, keeps
  // draining the daemon's notify socket meanwhile: a daemon blocks in sd_notify() once the
  // socket's queue is full, and the command may be waiting on that daemon.
  ShellResult finish(NotifyReceiver* rx = nullptr);

 private:
  ShellProcess(Child c, OutputCapture cap, Clock::time_point deadline, const Containment* box)
      : child_(std::move(c)), capture_(std::move(cap)), deadline_(deadline), containment_(box) {}
  Child child_;
  OutputCapture capture_;
  Clock::time_point deadline_;
  const Containment* containment_;
};

Result<ShellResult> run_shell(const ShellRun& run, NotifyReceiver* rx = nullptr);

}  // namespace crashkit
