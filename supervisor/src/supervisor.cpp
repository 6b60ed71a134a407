// Supervisor state machine. All child state lives under one mutex. Each worker has a host
// thread that runs it again and again; the common restart (one_for_one, no backoff) is
// decided inline by that thread under the mutex, so a restart costs no thread creation and
// no wake-up of another thread. Everything else (backoff timers, one_for_all/rest_for_one,
// giving up, the watchdog, signals) is done by the loop thread in run().
#include "crashkit/supervisor.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <initializer_list>
#include <mutex>
#include <random>
#include <thread>

#include "crashkit/notify.hpp"

extern char** environ;

namespace crashkit {

using Clock = std::chrono::steady_clock;

std::int64_t Heartbeat::now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

namespace {

struct Child {
  ChildSpec spec;
  std::size_t index = 0;
  Heartbeat hb;
  WorkerStatus st;
  bool want_run = false;   // host: start the worker now
  bool active = false;     // the worker is running
  bool host_exit = false;  // host: leave
  bool pending = false;    // loop: apply the strategy for this child's restart
  bool scheduled = false;  // loop: start it once st.next_try has come
  bool abandoned = false;  // overran its shutdown timeout
  std::stop_source stop;
  Clock::time_point started_at;
  std::condition_variable cv;
  std::thread host;
};

// Runs a process worker to its end; stops it on `stop` (SIGTERM, then SIGKILL).
std::pair<bool, std::string> run_process(const ChildSpec& spec, std::stop_token stop) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view kv(*e);
    if (!kv.starts_with("NOTIFY_SOCKET=") && !kv.starts_with("WATCHDOG_")) env.emplace_back(kv);
  }
  std::vector<char*> envp, argv;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = spec.process;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, argv[0], nullptr, &attr, argv.data(), envp.data());
  posix_spawnattr_destroy(&attr);
  if (rc != 0)
    return {true, fmt::format("cannot spawn {}: {}", spec.process[0], std::strerror(rc))};
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  int wake = eventfd(0, EFD_CLOEXEC);
  {
    // Deregistered (its destructor waits for a running callback) before `wake` is closed.
    std::stop_callback on_stop(stop, [wake] {
      std::uint64_t one = 1;
      ssize_t ignored = write(wake, &one, sizeof one);
      (void)ignored;
    });
    pollfd fds[2] = {{pidfd, POLLIN, 0}, {wake, POLLIN, 0}};
    while (poll(fds, 2, -1) < 0 && errno == EINTR) {
    }
    if ((fds[0].revents & POLLIN) == 0) {
      kill(pid, SIGTERM);
      pollfd p{pidfd, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(spec.shutdown_timeout.count())) <= 0) kill(pid, SIGKILL);
    }
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  close(pidfd);
  close(wake);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return {false, {}};
  if (stop.stop_requested() && WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM)
    return {false, {}};
  if (WIFEXITED(status)) return {true, fmt::format("exited with code {}", WEXITSTATUS(status))};
  const char* name = sigabbrev_np(WTERMSIG(status));
  return {true, fmt::format("killed by SIG{}", name != nullptr ? name : "?")};
}

}  // namespace

struct Supervisor::Impl {
  SupervisorOptions opt;
  std::vector<std::unique_ptr<Child>> children;
  mutable std::mutex mu;
  std::condition_variable changed;  // a worker stopped (loop waits on it while stopping others)
  int wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  std::vector<Clock::time_point> ring;  // the last `intensity` restart times
  std::size_t ring_next = 0;
  bool stopping = false;
  bool gave_up = false;
  std::string gave_up_reason;
  std::atomic<bool> stop_requested{false};
  std::mt19937_64 rng;

  void wake() {
    std::uint64_t one = 1;
    ssize_t ignored = write(wake_fd, &one, sizeof one);
    (void)ignored;
  }

  // OTP intensity: more than `intensity` restarts within `period` means give up. O(1).
  bool record_restart(Clock::time_point now) {
    if (opt.intensity <= 0) return false;
    auto r = static_cast<std::size_t>(opt.intensity);
    if (ring.size() < r) {
      ring.push_back(now);
      return true;
    }
    if (now - ring[ring_next] <= opt.period) return false;
    ring[ring_next] = now;
    ring_next = (ring_next + 1) % r;
    return true;
  }

  std::chrono::milliseconds backoff(Child& c) {
    if (opt.backoff_initial.count() == 0) return std::chrono::milliseconds(0);
    double base = static_cast<double>(opt.backoff_initial.count());
    double d = std::min(base * std::pow(2.0, std::min(c.st.attempt, 30)),
                        static_cast<double>(opt.backoff_max.count()));
    std::uniform_real_distribution<double> j(1.0 - opt.jitter, 1.0 + opt.jitter);
    return std::chrono::milliseconds(static_cast<std::int64_t>(d * j(rng)));
  }

  // Called by a host thread, under mu, when its worker returned or threw.
  void on_exit(Child& c, bool panic, const std::string& reason) {
    c.active = false;
    if (panic) {
      c.st.last_reason = reason;
      fmt::print(stderr, "crashkit: worker '{}' panicked: {}\n", c.spec.name, reason);
    }
    changed.notify_all();
    if (stopping || c.stop.stop_requested()) {
      c.st.state = WorkerStatus::State::stopped;
      return;
    }
    bool restart =
        c.spec.restart == Restart::permanent || (c.spec.restart == Restart::transient && panic);
    if (!restart) {
      c.st.state = panic ? WorkerStatus::State::failed : WorkerStatus::State::stopped;
      return;
    }
    auto now = Clock::now();
    if (!record_restart(now)) {
      gave_up = true;
      gave_up_reason =
          fmt::format("gave up: more than {} restarts in {}ms; last: worker '{}' {}", opt.intensity,
                      opt.period.count(), c.spec.name, panic ? "panicked: " + reason : "exited");
      c.st.state = WorkerStatus::State::failed;
      wake();
      return;
    }
    if (now - c.started_at >= opt.period) c.st.attempt = 0;  // it had been healthy a while
    auto delay = backoff(c);
    ++c.st.attempt;
    if (opt.strategy == Strategy::one_for_one && delay.count() == 0) {
      c.want_run = true;  // fast path: the host loops straight back into the worker
      return;
    }
    c.st.state = WorkerStatus::State::restarting;
    c.st.next_try = now + delay;
    c.pending = true;
    wake();
  }

  void host_loop(Child& c) {
    // An alternate stack so the panic hook can report a stack overflow. Only if the thread
    // has none: a sanitizer runtime installs its own and unmaps it at thread exit.
    static thread_local char altstack[64 * 1024];
    stack_t old{};
    bool installed = false;
    if (sigaltstack(nullptr, &old) == 0 && (old.ss_flags & SS_DISABLE) != 0) {
      stack_t ss{};
      ss.ss_sp = altstack;
      ss.ss_size = sizeof altstack;
      installed = sigaltstack(&ss, nullptr) == 0;
    }
    struct RestoreAltstack {
      bool on;
      ~RestoreAltstack() {
        if (!on) return;
        stack_t off{};
        off.ss_flags = SS_DISABLE;
        sigaltstack(&off, nullptr);
      }
    } restore{installed};
    pthread_setname_np(pthread_self(), c.spec.name.substr(0, 15).c_str());
    std::unique_lock lk(mu);
    while (true) {
      c.cv.wait(lk, [&] { return c.want_run || c.host_exit; });
      if (c.host_exit) return;
      c.want_run = false;
      c.active = true;
      c.st.state = WorkerStatus::State::running;
      ++c.st.starts;
      changed.notify_all();  // start_child waits for this: children start in order
      c.started_at = Clock::now();
      c.stop = std::stop_source{};
      c.hb.beat();
      auto token = c.stop.get_token();
      lk.unlock();
      bool panic = false;
      std::string reason;
      if (!c.spec.process.empty()) {
        std::tie(panic, reason) = run_process(c.spec, token);
      } else {
        try {
          c.spec.run(token, c.hb);
        } catch (const std::exception& e) {
          panic = true;
          reason = e.what();
        } catch (...) {
          panic = true;
          reason = "exception of unknown type";
        }
      }
      lk.lock();
      on_exit(c, panic, reason);
    }
  }

  // Under mu (released while waiting): start child c and wait until its host has picked the
  // start up, so children start in order, as OTP starts them.
  void start_child(Child& c, std::unique_lock<std::mutex>& lk) {
    c.scheduled = false;
    c.want_run = true;
    c.cv.notify_one();
    changed.wait(lk, [&] { return !c.want_run || c.host_exit; });
  }

  // Under mu (released while waiting): stop child c, up to its shutdown timeout.
  void stop_child(Child& c, std::unique_lock<std::mutex>& lk) {
    if (!c.active) {
      if (c.st.state == WorkerStatus::State::restarting) c.st.state = WorkerStatus::State::stopped;
      c.scheduled = false;
      return;
    }
    c.stop.request_stop();
    if (!changed.wait_for(lk, c.spec.shutdown_timeout, [&] { return !c.active; })) {
      c.abandoned = true;
      fmt::print(stderr, "crashkit: worker '{}' did not stop within {}ms; abandoning it\n",
                 c.spec.name, c.spec.shutdown_timeout.count());
    }
  }

  // Under mu: apply the strategy to children with a pending restart.
  void apply_pending(std::unique_lock<std::mutex>& lk) {
    for (auto& cp : children) {
      Child& c = *cp;
      if (!c.pending || stopping) continue;
      c.pending = false;
      if (opt.strategy == Strategy::one_for_one) {
        c.scheduled = true;  // just wait for its backoff
        continue;
      }
      std::size_t from = opt.strategy == Strategy::one_for_all ? 0 : c.index;
      for (std::size_t j = children.size(); j-- > from;)
        if (j != c.index) stop_child(*children[j], lk);
      for (std::size_t j = from; j < children.size(); ++j) {
        Child& o = *children[j];
        if (j != c.index && o.spec.restart == Restart::temporary) continue;
        o.st.state = WorkerStatus::State::restarting;
        o.st.next_try = c.st.next_try;  // the whole group waits out the failed child's backoff
        o.pending = false;
        o.scheduled = true;
      }
      return;
    }
  }

  // Under mu: start, in order, every child whose backoff is over.
  Clock::time_point start_due(std::unique_lock<std::mutex>& lk) {
    auto now = Clock::now();
    auto next = Clock::time_point::max();
    for (auto& cp : children) {
      Child& c = *cp;
      if (!c.scheduled || c.active || c.st.state != WorkerStatus::State::restarting) continue;
      if (c.st.next_try <= now)
        start_child(c, lk);
      else
        next = std::min(next, c.st.next_try);
    }
    return next;
  }

  bool healthy() const {
    auto now = Heartbeat::now_ns();
    for (const auto& c : children) {
      if (!c->spec.critical || c->spec.heartbeat_deadline.count() == 0) continue;
      auto deadline =
          std::chrono::duration_cast<std::chrono::nanoseconds>(c->spec.heartbeat_deadline).count();
      if (!c->active || now - c->hb.last_ns() > deadline) return false;
    }
    return true;
  }

  std::string describe() const {
    std::string s;
    for (const auto& c : children) {
      const char* st = c->st.state == WorkerStatus::State::running      ? "running"
                       : c->st.state == WorkerStatus::State::restarting ? "restarting"
                       : c->st.state == WorkerStatus::State::failed     ? "failed"
                                                                        : "stopped";
      s += fmt::format("{}{} {}", s.empty() ? "" : ", ", c->spec.name, st);
      if (c->st.attempt > 0) s += fmt::format(" (restarts {})", c->st.attempt);
    }
    return s;
  }
};

Supervisor::Supervisor(SupervisorOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->opt = std::move(options);
  impl_->rng.seed(impl_->opt.seed != 0
                      ? impl_->opt.seed
                      : static_cast<std::uint64_t>(Clock::now().time_since_epoch().count()));
}

Supervisor::~Supervisor() {
  if (!impl_) return;
  bool abandoned = false;
  {
    std::unique_lock lk(impl_->mu);
    impl_->stopping = true;
    for (auto it = impl_->children.rbegin(); it != impl_->children.rend(); ++it)
      impl_->stop_child(**it, lk);
    for (auto& c : impl_->children) {
      c->abandoned = c->active;  // one that overran in run() may have finished since
      c->host_exit = true;
      c->cv.notify_one();
      abandoned = abandoned || c->abandoned;
    }
  }
  for (auto& c : impl_->children) {
    if (c->abandoned)
      c->host.detach();
    else if (c->host.joinable())
      c->host.join();
  }
  close(impl_->wake_fd);
  // An abandoned worker still runs and references our state: leak it rather than free it
  // under that thread. The process is about to exit anyway.
  if (abandoned) (void)impl_.release();
}

void Supervisor::add(ChildSpec spec) {
  std::lock_guard lk(impl_->mu);
  auto c = std::make_unique<Child>();
  c->spec = std::move(spec);
  c->index = impl_->children.size();
  Child* raw = c.get();
  impl_->children.push_back(std::move(c));
  raw->host = std::thread([this, raw] { impl_->host_loop(*raw); });
}

void Supervisor::block_signals() {
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&set, s);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

void Supervisor::request_stop() {
  impl_->stop_requested = true;
  impl_->wake();
}

WorkerStatus Supervisor::status(const std::string& name) const {
  std::lock_guard lk(impl_->mu);
  for (const auto& c : impl_->children)
    if (c->spec.name == name) return c->st;
  return {};
}

std::string Supervisor::describe() const {
  std::lock_guard lk(impl_->mu);
  return impl_->describe();
}

int Supervisor::run() {
  Impl& s = *impl_;
  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&set, sig);
  int sig_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  auto watchdog = s.opt.notify ? notify::watchdog_interval() : std::nullopt;
  auto next_ping = Clock::now();
  {
    std::unique_lock lk(s.mu);
    for (auto& c : s.children) s.start_child(*c, lk);
  }
  if (s.opt.notify) {
    notify::ready();
    notify::status("{}", describe());
  }
  int exit_status = kExitGraceful;
  while (true) {
    auto next = Clock::time_point::max();
    {
      std::unique_lock lk(s.mu);
      s.apply_pending(lk);
      next = s.start_due(lk);
      if (s.gave_up) {
        exit_status = kExitGaveUp;
        fmt::print(stderr, "crashkit: {}\n", s.gave_up_reason);
        if (s.opt.notify) notify::status("{}", s.gave_up_reason);
        break;
      }
    }
    if (s.stop_requested) break;
    if (watchdog) {
      auto now = Clock::now();
      if (now >= next_ping) {
        bool ok;
        {
          std::lock_guard lk(s.mu);
          ok = s.healthy();
        }
        if (ok) notify::watchdog();  // a hung critical worker: no ping, systemd restarts us
        next_ping = now + *watchdog / 2;
      }
      next = std::min(next, next_ping);
    }
    int timeout = -1;
    if (next != Clock::time_point::max())
      timeout = static_cast<int>(std::max<std::int64_t>(
          0, std::chrono::ceil<std::chrono::milliseconds>(next - Clock::now()).count()));
    pollfd fds[2] = {{sig_fd, POLLIN, 0}, {s.wake_fd, POLLIN, 0}};
    poll(fds, 2, timeout);
    std::uint64_t drained;
    while (read(s.wake_fd, &drained, sizeof drained) > 0) {
    }
    signalfd_siginfo si;
    bool stop = false;
    while (read(sig_fd, &si, sizeof si) == sizeof si) {
      if (si.ssi_signo == SIGHUP) {
        if (s.opt.notify) notify::reloading();
        if (s.opt.on_reload) s.opt.on_reload();
        if (s.opt.notify) notify::ready();
      } else {
        stop = true;
      }
    }
    if (stop) break;
  }
  // Shutdown: reverse start order, per-child timeouts; a second SIGTERM/SIGINT exits at once.
  if (s.opt.notify) notify::stopping();
  std::unique_lock lk(s.mu);
  s.stopping = true;
  for (auto it = s.children.rbegin(); it != s.children.rend(); ++it) {
    Child& c = **it;
    if (!c.active) continue;
    c.stop.request_stop();
    auto deadline = Clock::now() + c.spec.shutdown_timeout;
    while (c.active && Clock::now() < deadline) {
      lk.unlock();
      pollfd p{sig_fd, POLLIN, 0};
      if (poll(&p, 1, 1) > 0) {  // short slices: the worker's exit arrives by condvar
        signalfd_siginfo si;
        while (read(sig_fd, &si, sizeof si) == sizeof si)
          if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) _exit(kExitSecondSignal);
      }
      lk.lock();
      s.changed.wait_for(lk, std::chrono::milliseconds(10), [&] { return !c.active; });
    }
    if (c.active) {
      c.abandoned = true;
      fmt::print(stderr, "crashkit: worker '{}' did not stop within {}ms; abandoning it\n",
                 c.spec.name, c.spec.shutdown_timeout.count());
    }
  }
  lk.unlock();
  close(sig_fd);
  return exit_status;
}

}  // namespace crashkit
