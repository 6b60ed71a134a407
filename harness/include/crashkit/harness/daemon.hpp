// Daemon: one start of the target under a NotifyReceiver. Owns the Child, its captured
// stdout/stderr, and follows MAINPID= (a daemon that forks may hand over its main process).
// Signals go to the main process, as systemd sends them; kill() also clears the group.
//
//   auto d = Daemon::start({.argv = argv, .env = env, .artifact_prefix = run.artifacts / "t0"},
//   rx); auto r = d->wait_ready(5s);       // r.what == Daemon::Ready::ready, r.elapsed auto s =
//   d->stop(SIGTERM, 5s);    // s.status, s.escalated
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "crashkit/harness/child.hpp"
#include "crashkit/harness/notify_receiver.hpp"
#include "crashkit/harness/output_capture.hpp"

namespace crashkit {

class Daemon {
 public:
  // The stdout and stderr pipes of one daemon, kept by the caller across its starts (a cell's
  // restarts; OutputCapture::rotate): a start costs no pipes, and its exit no wake-up of the
  // capture thread. Each start still writes its own "<prefix>.stdout" / ".stderr". Only for
  // starts in a cgroup Containment, where every process of a start is dead before the next
  // one begins, so no late writer puts one start's output in the next one's file.
  struct KeptPipes {
    std::optional<OutputCapture> out, err;
  };

  struct Options {
    std::vector<std::string> argv;
    std::vector<std::string> env;  // NOTIFY_SOCKET is added by start()
    std::optional<Credentials> user;
    std::filesystem::path cwd;
    // "<prefix>.stdout" / "<prefix>.stderr"; empty: output goes to /dev/null.
    std::filesystem::path artifact_prefix;
    std::size_t capture_limit = 8 << 20;
    bool deny_io_uring = false;         // see SpawnOptions
    std::vector<ResourceLimit> limits;  // setrlimit in the child (SpawnOptions::limits)
    int memory_cgroup_procs = -1;       // SpawnOptions::memory_cgroup_procs
    // Every start joins it; stop() and kill() end with containment->kill_all(). Not owned.
    const Containment* containment = nullptr;
    // Non-null: the captures live here across starts instead of in this Daemon. Not owned.
    KeptPipes* kept_pipes = nullptr;
  };

  // Resets the receiver's state, spawns the target with NOTIFY_SOCKET set. Takes the options by
  // value: argv and env move on into the spawn (pass std::move(o) in a restart loop).
  static Result<Daemon> start(Options options, NotifyReceiver& receiver);

  enum class Ready { ready, exited, timeout };
  struct ReadyWait {
    Ready what;
    Duration elapsed;                  // from start() to READY (or to giving up)
    std::optional<ExitStatus> status;  // for Ready::exited
  };
  ReadyWait wait_ready(Duration timeout);
  // For daemons that do not speak sd_notify (--ready-when): calls `probe` (true: ready) until
  // it says ready, the daemon exits, or `timeout` has passed since start(), pausing 1 ms
  // doubling to 100 ms between attempts (a pause ends at once if the daemon exits). Weaker than
  // READY=1: what a probe sees (a listening socket) may come before recovery is done. The
  // daemon must not fork away (systemd's Type=simple): its first process is the one watched.
  ReadyWait wait_ready_by(const std::function<bool()>& probe, Duration timeout);

  // Waits up to `timeout` for the main process to exit (event-driven), without signalling.
  std::optional<ExitStatus> wait_exit(Duration timeout);

  struct Stop {
    std::optional<ExitStatus> status;  // unknown if the main process was not ours to reap
    bool escalated = false;            // did not exit within the timeout; SIGKILLed
    // Processes of this start (helpers, whatever they did to leave) still alive after the main
    // process exited: killed. Needs Options::containment.
    int outlived = 0;
  };
  // Sends `sig` to the main process, waits up to timeout, escalates to SIGKILL; clears the
  // process group either way.
  Stop stop(int sig, Duration timeout);
  // SIGKILL now (main process and group), reap.
  Stop kill();

  // Still running? (non-blocking)
  bool alive();
  pid_t started_pid() const { return child_.pid(); }
  pid_t main_pid() const { return main_pid_ > 0 ? main_pid_ : child_.pid(); }
  // pidfd that becomes readable when the main process exits.
  int main_pidfd() const { return main_pidfd_ >= 0 ? main_pidfd_ : child_.pidfd(); }
  // Tail of captured stderr (for "exited before READY" reports); complete once the daemon
  // has exited (the pipe is drained first).
  std::string stderr_tail();
  // The file the daemon's stderr goes to (empty without an artifact_prefix; absent until the
  // daemon wrote a byte).
  std::filesystem::path stderr_file() const;

  Daemon(Daemon&&) noexcept;
  Daemon& operator=(Daemon&&) = delete;
  ~Daemon();

 private:
  Daemon(Child child, NotifyReceiver& rx, std::optional<OutputCapture> out,
         std::optional<OutputCapture> err);
  // Adopts an announced MAINPID that is not the started process.
  void follow_main_pid();
  std::optional<ExitStatus> reap_main();
  // The captures of this start (kept_ or owned), and ending them once the start is over.
  OutputCapture* out() { return kept_ != nullptr ? &*kept_->out : out_ ? &*out_ : nullptr; }
  OutputCapture* err() { return kept_ != nullptr ? &*kept_->err : err_ ? &*err_ : nullptr; }
  void end_captures();

  Child child_;
  NotifyReceiver* rx_;
  std::optional<OutputCapture> out_;
  std::optional<OutputCapture> err_;
  KeptPipes* kept_ = nullptr;
  Clock::time_point started_at_;
  pid_t main_pid_ = -1;  // announced MAINPID when it differs from the started pid
  int main_pidfd_ = -1;
  pid_t escaped_pgid_ = -1;  // the main process's group, when it left ours (setsid)
  const Containment* containment_ = nullptr;
  std::optional<ExitStatus> main_status_;
  bool finished_ = false;  // stopped or killed: never signal a reaped pid again
};

}  // namespace crashkit
