// The supervisor's loop thread: one poll set of a signalfd, the wake eventfd, a timerfd (backoff
// and stop deadlines, the watchdog) and every process worker's pidfd. No sleep slices: each
// wake-up is an event, applied to the children's state machines under the lock.
#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>

#include "crashkit/notify.hpp"
#include "supervisor_impl.hpp"

namespace crashkit {

using detail::Event;
using detail::Kind;
using detail::Phase;

namespace {

bool waiting_for_end(Phase p) {
  return p == Phase::stopping || p == Phase::cycling;
}

// Arms (or, with kNever, disarms) an absolute CLOCK_MONOTONIC timer; steady_clock is that clock.
void arm_timer(int fd, Clock::time_point at) {
  itimerspec its{};
  if (at != kNever) {
    auto ns = std::max<std::int64_t>(
        1, std::chrono::duration_cast<std::chrono::nanoseconds>(at.time_since_epoch()).count());
    its.it_value.tv_sec = static_cast<time_t>(ns / 1000000000);
    its.it_value.tv_nsec = static_cast<long>(ns % 1000000000);
  }
  timerfd_settime(fd, TFD_TIMER_ABSTIME, &its, nullptr);
}

void drain(int fd) {
  std::uint64_t n;
  while (read(fd, &n, sizeof n) > 0) {
  }
}

}  // namespace

// Under mu: stop every child, last started first, each awaited before the next.
void Supervisor::Impl::begin_shutdown() {
  shutting_down = true;
  group_restarts.clear();
  stop_queue.clear();
  for (std::size_t i = children.size(); i-- > 0;) stop_queue.push_back(i);
  stop_event = Event::stop;
}

// Under mu: one_for_all / rest_for_one. Stop the failed child's group in reverse order (each
// awaited, as OTP does), then start_due() starts it in order once the failed child's backoff
// is over. A sibling that overruns its stop rejoins as soon as it ends.
void Supervisor::Impl::begin_group_restart(std::size_t failed) {
  Child& f = *children[failed];
  if (f.phase != Phase::backoff) return;  // stopped or given up since
  const std::size_t from = opt.strategy == Strategy::one_for_all ? 0 : failed;
  stop_queue.clear();
  for (std::size_t j = children.size(); j-- > from;) {
    children[j]->due = f.due;  // the whole group waits out the failed child's backoff
    if (j != failed) stop_queue.push_back(j);
  }
  stop_event = Event::cycle;
}

// Under mu: apply stop_event to the queue's children in order; stop at the first that must be
// awaited (its end, or its deadline, moves the queue on).
void Supervisor::Impl::advance_stop_queue() {
  while (!stop_queue.empty()) {
    Child& c = *children[stop_queue.front()];
    if (waiting_for_end(c.phase) && !(stop_event == Event::stop && c.phase == Phase::cycling))
      return;
    if (c.phase == Phase::starting) return;  // a spawn or host start in flight: its entry wakes us
    if (can(c, stop_event)) apply(c, stop_event);
    if (waiting_for_end(c.phase)) return;
    stop_queue.pop_front();
  }
}

// Under mu (released while a start is awaited): start, in order, every child whose restart
// time has come.
void Supervisor::Impl::start_due(std::unique_lock<std::mutex>& lk) {
  const auto now = Clock::now();
  for (auto& c : children)
    if (c->phase == Phase::backoff && c->due <= now) start_and_wait(*c, lk);
}

void Supervisor::Impl::fire_deadlines(Clock::time_point now) {
  for (auto& c : children)
    if (waiting_for_end(c->phase) && c->deadline <= now) apply(*c, Event::deadline);
}

Clock::time_point Supervisor::Impl::next_timer() const {
  auto next = kNever;
  for (const auto& c : children) {
    if (waiting_for_end(c->phase)) next = std::min(next, c->deadline);
    if (c->phase == Phase::backoff && !shutting_down && stop_queue.empty())
      next = std::min(next, c->due);
  }
  return next;
}

// Under mu: one round of the loop's decisions. False once the shutdown is complete.
bool Supervisor::Impl::step(std::unique_lock<std::mutex>& lk) {
  while (!spawn_failures.empty()) {
    Child& c = *children[spawn_failures.front()];
    spawn_failures.pop_front();
    apply(c, Event::panicked, std::string(c.last_reason));
  }
  if (!shutting_down && (stop_requested || !gave_up.empty())) begin_shutdown();
  fire_deadlines(Clock::now());
  advance_stop_queue();
  if (shutting_down) return !stop_queue.empty();
  if (stop_queue.empty() && !group_restarts.empty()) {
    begin_group_restart(group_restarts.front());
    group_restarts.pop_front();
    advance_stop_queue();
  }
  if (stop_queue.empty()) start_due(lk);
  return true;
}

namespace {

struct LoopFds {
  int signals = -1;
  int timer = -1;
};

// Reads pending signals. SIGHUP reloads; SIGTERM/SIGINT ask for a graceful stop, and a second
// one while stopping exits at once (systemd's second Ctrl-C).
void handle_signals(int fd, const SupervisorOptions& opt, bool shutting_down,
                    std::atomic<bool>& stop_requested) {
  signalfd_siginfo si;
  while (read(fd, &si, sizeof si) == sizeof si) {
    if (si.ssi_signo == SIGHUP) {
      if (shutting_down) continue;
      if (opt.notify) notify::reloading();
      if (opt.on_reload) opt.on_reload();
      if (opt.notify) notify::ready();
    } else if (shutting_down || stop_requested) {
      _exit(kExitSecondSignal);
    } else {
      stop_requested = true;
    }
  }
}

// STATUS= with the reason when giving up, then STOPPING=1.
void announce_stop(const SupervisorOptions& opt, const std::string& gave_up) {
  if (!gave_up.empty()) {
    if (opt.log) opt.log(gave_up);
    if (opt.notify) notify::status("{}", gave_up);
  }
  if (opt.notify) notify::stopping();
}

}  // namespace

// Reaps every process worker whose pidfd polled readable and applies its end.
void Supervisor::Impl::reap_ended(const std::vector<pollfd>& poll_set,
                                  const std::vector<std::size_t>& owners) {
  std::unique_lock lk(mu);
  for (std::size_t i = 0; i < owners.size(); ++i) {
    if ((poll_set[3 + i].revents & (POLLIN | POLLHUP)) == 0) continue;
    auto& c = *children[owners[i]];
    const auto end = detail::reap_process(c.process, waiting_for_end(c.phase));
    if (end.ended) apply(c, end.normal ? Event::exited : Event::panicked, end.reason);
  }
  flush_logs(lk);
}

bool Supervisor::Impl::healthy_now() const {
  std::lock_guard lk(mu);
  return healthy();
}

int Supervisor::run() {
  Impl& s = *impl_;
  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&set, sig);
  const LoopFds fds{signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK),
                    timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK)};
  const auto watchdog = s.opt.notify ? notify::watchdog_interval() : std::nullopt;
  auto next_ping = Clock::now();
  {
    std::unique_lock lk(s.mu);
    for (auto& c : s.children) s.start_and_wait(*c, lk);
    s.flush_logs(lk);
  }
  if (s.opt.notify) {
    notify::ready();
    notify::status("{}", describe());
  }
  bool announced_stop = false;
  std::vector<pollfd> poll_set;
  std::vector<std::size_t> owners;  // poll_set[3 + i] is the pidfd of children[owners[i]]
  while (true) {
    bool shutting_down;
    std::string gave_up;
    {
      std::unique_lock lk(s.mu);
      const bool more = s.step(lk);
      s.flush_logs(lk);
      shutting_down = s.shutting_down;
      if (shutting_down && !announced_stop) gave_up = s.gave_up;
      if (!more) break;
      auto next = s.next_timer();
      if (watchdog && !shutting_down) next = std::min(next, next_ping);
      arm_timer(fds.timer, next);
      poll_set = {{fds.signals, POLLIN, 0}, {s.wake_fd, POLLIN, 0}, {fds.timer, POLLIN, 0}};
      owners.clear();
      for (const auto& c : s.children)
        if (c->process.pidfd >= 0) {
          poll_set.push_back({c->process.pidfd, POLLIN, 0});
          owners.push_back(c->index);
        }
    }
    if (shutting_down && !announced_stop) {
      announced_stop = true;
      announce_stop(s.opt, gave_up);
    }
    poll(poll_set.data(), poll_set.size(), -1);  // EINTR: just another round
    drain(s.wake_fd);
    drain(fds.timer);
    handle_signals(fds.signals, s.opt, shutting_down, s.stop_requested);
    s.reap_ended(poll_set, owners);
    if (watchdog && !shutting_down && Clock::now() >= next_ping) {
      if (s.healthy_now()) notify::watchdog();  // a hung critical worker: no ping, systemd acts
      next_ping = Clock::now() + *watchdog / 2;
    }
  }
  close(fds.signals);
  close(fds.timer);
  std::lock_guard lk(s.mu);
  return s.gave_up.empty() ? kExitGraceful : kExitGaveUp;
}

Supervisor::~Supervisor() {
  if (!impl_) return;
  Impl& s = *impl_;
  std::vector<bool> still_running(s.children.size(), false);  // decided under mu
  bool abandoned = false;
  {
    std::unique_lock lk(s.mu);
    s.shutting_down = true;
    // run() stopped whatever it ran; this covers thread workers still running because run()
    // was never called or did not finish. Each gets its own shutdown_timeout, once.
    for (auto it = s.children.rbegin(); it != s.children.rend(); ++it) {
      auto& c = **it;
      if (c.kind != Kind::thread || c.phase != Phase::running) continue;
      s.apply(c, Event::stop);
      if (!s.changed.wait_until(lk, c.deadline, [&] { return !waiting_for_end(c.phase); }))
        s.apply(c, Event::deadline);
    }
    for (auto& c : s.children) {
      c->host_exit = true;
      c->cv.notify_one();
      still_running[c->index] = c->phase == Phase::abandoned || c->phase == Phase::late;
      abandoned = abandoned || still_running[c->index];
    }
    s.flush_logs(lk);
  }
  for (auto& c : s.children) {
    if (!c->host.joinable()) continue;
    if (still_running[c->index])
      c->host.detach();
    else
      c->host.join();
  }
  // An abandoned worker still runs and will report its end to this state: keep it alive
  // (and reachable, so leak checkers see no leak). The process is expected to exit soon.
  if (abandoned) {
    static std::mutex keep_mu;
    static auto* kept = new std::vector<std::unique_ptr<Impl>>();
    std::lock_guard lk(keep_mu);
    kept->push_back(std::move(impl_));
  }
}

}  // namespace crashkit
