#include "crashkit/harness/daemon.hpp"

#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include "crashkit/harness/sentinel.hpp"
#include "process/pidfd.hpp"

namespace crashkit {

namespace {

// The capture for "<prefix><suffix>": a new one in `slot`, or the kept one pointed at the file.
std::optional<Error> capture_into(std::optional<OutputCapture>& slot, std::string file,
                                  std::size_t limit, bool kept) {
  if (kept && slot) {
    slot->rotate(std::move(file));
    return std::nullopt;
  }
  auto c = OutputCapture::open(file, limit, OutputCapture::FileCreation::on_first_byte);
  if (!c) return c.error();
  slot.emplace(std::move(*c));
  return std::nullopt;
}

}  // namespace

Result<Daemon> Daemon::start(Options o, NotifyReceiver& rx) {
  std::optional<OutputCapture> owned_out, owned_err;
  KeptPipes* kept = o.artifact_prefix.empty() ? nullptr : o.kept_pipes;
  auto& out = kept != nullptr ? kept->out : owned_out;
  auto& err = kept != nullptr ? kept->err : owned_err;
  if (!o.artifact_prefix.empty()) {
    const std::string prefix = o.artifact_prefix.string();
    if (auto e = capture_into(out, prefix + ".stdout", o.capture_limit, kept != nullptr)) return *e;
    if (auto e = capture_into(err, prefix + ".stderr", o.capture_limit, kept != nullptr)) return *e;
  }
  SpawnOptions s;
  s.argv = std::move(o.argv);
  s.env = std::move(o.env);
  s.env.push_back("NOTIFY_SOCKET=" + rx.address());
  s.user = std::move(o.user);
  s.cwd = std::move(o.cwd);
  s.deny_io_uring = o.deny_io_uring;
  s.limits = std::move(o.limits);
  s.memory_cgroup_procs = o.memory_cgroup_procs;
  s.containment = o.containment;
  s.stdout_fd = out ? out->write_fd() : -1;
  s.stderr_fd = err ? err->write_fd() : -1;
  rx.drain();  // datagrams left over from a previous start must not count for this one
  rx.reset_state();
  auto started_at = Clock::now();
  auto child = Child::spawn(s);
  if (kept == nullptr && out) out->close_write_end();
  if (kept == nullptr && err) err->close_write_end();
  if (!child) {
    if (kept != nullptr) {
      kept->out->settle();
      kept->err->settle();
    }
    return child.error();
  }
  rx.set_main_pid(child->pid());
  Daemon d(std::move(*child), rx, std::move(owned_out), std::move(owned_err));
  d.kept_ = kept;
  d.started_at_ = started_at;
  d.containment_ = o.containment;
  return d;
}

Daemon::Daemon(Child child, NotifyReceiver& rx, std::optional<OutputCapture> out,
               std::optional<OutputCapture> err)
    : child_(std::move(child)), rx_(&rx), out_(std::move(out)), err_(std::move(err)) {}

Daemon::Daemon(Daemon&& o) noexcept
    : child_(std::move(o.child_)),
      rx_(o.rx_),
      out_(std::move(o.out_)),
      err_(std::move(o.err_)),
      kept_(o.kept_),
      started_at_(o.started_at_),
      main_pid_(o.main_pid_),
      main_pidfd_(o.main_pidfd_),
      escaped_pgid_(o.escaped_pgid_),
      containment_(o.containment_),
      main_status_(o.main_status_),
      finished_(o.finished_) {
  o.finished_ = true;
  o.main_pid_ = -1;
  o.main_pidfd_ = -1;
}

Daemon::~Daemon() {
  if (!finished_) kill();
}

void Daemon::follow_main_pid() {
  const auto& announced = rx_->state().main_pid;
  if (!announced || *announced == child_.pid() || *announced == main_pid_) return;
  int fd = open_pidfd(*announced);
  if (fd < 0) return;  // already gone: the started process remains the main one
  if (main_pidfd_ >= 0) close(main_pidfd_);
  main_pid_ = *announced;
  main_pidfd_ = fd;
  // A main process that called setsid() left our group: its group (with its own helpers)
  // must be killed and reaped too, and the sentinel must know it.
  pid_t pg = getpgid(main_pid_);
  if (pg > 1 && pg != child_.pgid() && pg != getpgrp()) {
    escaped_pgid_ = pg;
    sentinel_watch(pg);
  }
  sentinel_watch_pid(main_pid_);
}

std::optional<ExitStatus> Daemon::reap_main() {
  if (main_status_) return main_status_;
  if (main_pid_ <= 0) return child_.try_wait();
  pollfd p{main_pidfd_, POLLIN, 0};
  if (poll(&p, 1, 0) <= 0) return std::nullopt;
  int w = 0;
  // Ours to reap only once its parent (the started process) is gone and we, the subreaper,
  // inherited it. Otherwise its exit status is not ours to know.
  // The pidfd turns readable a moment before the process is waitable, so WNOHANG could miss
  // it. Blocking is safe: it has exited, and waitpid gives ECHILD at once if it is not ours.
  pid_t got;
  while ((got = waitpid(main_pid_, &w, 0)) < 0 && errno == EINTR) {
  }
  if (got < 0 && errno == ECHILD && !child_.status()) {
    // Its parent may be the started process, still inside exit(): a process's fds close
    // before its children are reparented, so the main process can be told to stop (and die)
    // before it is ours. Let the started process finish exiting (bounded), then retry.
    if (child_.wait_for(std::chrono::seconds(1))) got = waitpid(main_pid_, &w, 0);
  }
  if (got == main_pid_) main_status_ = ExitStatus::from_wait_status(w);
  close(main_pidfd_);
  main_pidfd_ = -1;
  sentinel_forget_pid(main_pid_);
  if (!main_status_) main_status_ = ExitStatus::unknown();
  return main_status_;
}

Daemon::ReadyWait Daemon::wait_ready(Duration timeout) {
  auto deadline = started_at_ + timeout;
  while (true) {
    const bool watching_started = main_pid_ <= 0;
    int watch[1] = {main_pidfd()};
    auto wake = rx_->wait([](const NotifyState& s) { return s.ready; }, deadline,
                          watch[0] >= 0 ? std::span<const int>(watch) : std::span<const int>());
    Duration elapsed = Clock::now() - started_at_;
    if (wake == NotifyReceiver::Wake::condition) {
      follow_main_pid();
      if (rx_->state().ready_at) elapsed = *rx_->state().ready_at - started_at_;
      return {Ready::ready, elapsed, std::nullopt};
    }
    if (wake == NotifyReceiver::Wake::timeout) return {Ready::timeout, elapsed, std::nullopt};
    if (watching_started) {
      // A forking daemon's first process exits 0 after handing over with MAINPID=: keep
      // waiting, now on the announced main process.
      auto st = child_.try_wait();
      follow_main_pid();
      if (main_pid_ > 0 && st && st->success()) continue;
      return {Ready::exited, elapsed, st};
    }
    return {Ready::exited, elapsed, reap_main()};
  }
}

Daemon::ReadyWait Daemon::wait_ready_by(const std::function<bool()>& probe, Duration timeout) {
  const auto deadline = started_at_ + timeout;
  Duration pause = std::chrono::milliseconds(1);
  auto since_start = [this] { return Duration(Clock::now() - started_at_); };
  while (true) {
    if (auto st = wait_exit(Duration::zero())) return {Ready::exited, since_start(), st};
    if (probe()) return {Ready::ready, since_start(), std::nullopt};
    const auto now = Clock::now();
    if (now >= deadline) return {Ready::timeout, since_start(), std::nullopt};
    if (auto st = wait_exit(std::min<Duration>(pause, deadline - now)))
      return {Ready::exited, since_start(), st};
    pause = std::min<Duration>(pause * 2, std::chrono::milliseconds(100));
  }
}

bool Daemon::alive() {
  follow_main_pid();
  if (main_pid_ > 0) return !reap_main().has_value();
  return !child_.try_wait().has_value();
}

std::optional<ExitStatus> Daemon::wait_exit(Duration timeout) {
  follow_main_pid();
  if (main_pid_ <= 0) return child_.wait_for(timeout);
  if (main_pidfd_ >= 0) {
    const auto deadline = Clock::now() + timeout;
    while (true) {  // poll_timeout_ms clamps at INT_MAX ms: a longer wait polls again
      pollfd p{main_pidfd_, POLLIN, 0};
      int n = poll(&p, 1, poll_timeout_ms(deadline - Clock::now()));
      if (n > 0 || (n < 0 && errno != EINTR) || Clock::now() >= deadline) break;
    }
  }
  return reap_main();
}

Daemon::Stop Daemon::stop(int sig, Duration timeout) {
  Stop s;
  if (finished_) return {main_status_ ? main_status_ : child_.status(), false};
  follow_main_pid();
  if (alive()) {
    ::kill(main_pid(), sig);
    s.status = wait_exit(timeout);
    if (!s.status) {
      s.escalated = true;
      return {kill().status, true};
    }
  }
  if (main_pid_ > 0) {
    s.status = reap_main();
  } else {
    s.status = child_.try_wait();
  }
  // What outlived the main process's exit, before the group clean-up below kills part of it.
  if (containment_ != nullptr) s.outlived = containment_->kill_all({child_.pid()});
  child_.kill_and_reap();  // the started process (if it still runs) and the group
  clear_process_group(escaped_pgid_);
  end_captures();
  finished_ = true;
  return s;
}

Daemon::Stop Daemon::kill() {
  Stop s;
  if (finished_) return {main_status_ ? main_status_ : child_.status(), false};
  follow_main_pid();
  // In a cgroup: the started process first, reaped here (so kill_all's check for zombies to
  // reap usually finds none and skips its scan of /proc), then kill_all ends the main one and
  // every helper, with no tree walk; nothing can leave the cgroup meanwhile. Otherwise the whole
  // tree first: helpers that left the group (setsid) are still descendants.
  const bool one_cgroup =
      containment_ != nullptr && containment_->mode() == Containment::Mode::cgroup;
  if (one_cgroup) {
    child_.kill_and_reap();
    s.outlived = containment_->kill_all({child_.pid(), main_pid_});
  }
  if (!one_cgroup && !child_.status()) kill_process_tree(child_.pid());
  if (main_pid_ > 0) {
    if (!one_cgroup) kill_process_tree(main_pid_);
    child_.kill_and_reap();
    if (main_pidfd_ >= 0) {
      pollfd p{main_pidfd_, POLLIN, 0};
      poll(&p, 1, 5000);  // SIGKILL cannot be ignored; bounded anyway
    }
    s.status = reap_main();
    clear_process_group(escaped_pgid_);
  } else {
    s.status = child_.kill_and_reap();
  }
  if (containment_ != nullptr && !one_cgroup) s.outlived = containment_->kill_all();
  end_captures();
  finished_ = true;
  return s;
}

// Every process of the start is dead by now (killed and reaped, the containment emptied), so a
// kept pipe holds all the start wrote and nothing more will come.
void Daemon::end_captures() {
  for (OutputCapture* c : {out(), err()}) {
    if (c == nullptr) continue;
    if (kept_ != nullptr)
      c->settle();
    else
      c->finish();
  }
}

std::filesystem::path Daemon::stderr_file() const {
  const OutputCapture* e = kept_ != nullptr ? &*kept_->err : err_ ? &*err_ : nullptr;
  return e != nullptr ? e->file() : std::filesystem::path();
}

std::string Daemon::stderr_tail() {
  OutputCapture* e = err();
  if (e == nullptr) return {};
  // Once the daemon is gone, what it wrote may still sit in the pipe, not yet read by the
  // capture thread: drain it first, or "exited before READY" would lose its last words.
  if (!alive()) return kept_ != nullptr ? e->sync() : e->finish();
  return e->tail();
}

}  // namespace crashkit
