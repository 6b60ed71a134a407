// Supervisor: children's events and the actions their transitions ask for (see
// supervisor_impl.hpp for the threading contract, child_phase.cpp for the rules).
#include "crashkit/supervisor.hpp"

#include <fmt/format.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>

#include "altstack.hpp"
#include "supervisor_impl.hpp"

namespace crashkit {

using detail::Event;
using detail::Kind;
using detail::Phase;

std::int64_t Heartbeat::now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

void SupervisorOptions::log_to_stderr(std::string_view line) {
  fmt::print(stderr, "crashkit: {}\n", line);
}

bool detail::IntensityRing::record(Clock::time_point now, int intensity,
                                   std::chrono::milliseconds period) {
  if (intensity <= 0) return false;
  auto r = static_cast<std::size_t>(intensity);
  if (ring_.size() < r) {
    ring_.push_back(now);
    return true;
  }
  if (now - ring_[next_] <= period) return false;
  ring_[next_] = now;
  next_ = (next_ + 1) % r;
  return true;
}

Supervisor::Impl::Impl() : wake_fd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

Supervisor::Impl::~Impl() {
  if (wake_fd >= 0) close(wake_fd);
}

void Supervisor::Impl::wake() {
  std::uint64_t one = 1;
  ssize_t ignored = write(wake_fd, &one, sizeof one);
  (void)ignored;
}

void Supervisor::Impl::log(std::string line) {
  if (opt.log) logs.push_back(std::move(line));
}

void Supervisor::Impl::flush_logs(std::unique_lock<std::mutex>& lk) {
  if (logs.empty()) return;
  auto lines = std::move(logs);
  logs.clear();
  lk.unlock();
  for (const auto& l : lines) opt.log(l);
  lk.lock();
}

bool Supervisor::Impl::can(const Child& c, Event e) const {
  return detail::transition(c.phase, e, c.kind, c.spec.restart).legal;
}

// Under mu: the one place a child's phase changes. Performs the transition's actions.
detail::Transition Supervisor::Impl::apply(Child& c, Event e, std::string_view reason) {
  const auto t = detail::transition(c.phase, e, c.kind, c.spec.restart);
  if (!t.legal) {
    log(fmt::format("internal error: event {} in phase {} of worker '{}' ignored",
                    detail::event_name(e), detail::phase_name(c.phase), c.spec.name));
    return t;
  }
  const Phase before = c.phase;
  c.phase = t.next;
  if (t.next != Phase::stopping && t.next != Phase::cycling) c.deadline = kNever;
  // An awaited end moves the loop's stop queue on (the loop may be the one waiting in poll).
  if (before == Phase::stopping || before == Phase::cycling) wake();
  if (t.actions & detail::kReportPanic) {
    c.last_reason = reason;
    if (opt.log) log(fmt::format("worker '{}' panicked: {}", c.spec.name, reason));
  }
  if (t.actions & detail::kReportOverrun)
    log(fmt::format("worker '{}' did not stop within {}ms; {}", c.spec.name,
                    c.spec.shutdown_timeout.count(),
                    c.kind == Kind::process ? "killing it"
                    : t.next == Phase::late ? "restarting it when it ends"
                                            : "abandoning it"));
  if (t.actions & detail::kRequestStop) request_stop_of(c);
  if (t.actions & detail::kKill) {
    kill(c.process.pid, SIGKILL);
    c.deadline = kNever;  // its end follows; nothing more to wait for
  }
  changed.notify_all();
  if (t.actions & detail::kRestart) on_restart(c);
  if (t.actions & detail::kRun) run_worker(c);
  return t;
}

void Supervisor::Impl::request_stop_of(Child& c) {
  c.deadline = Clock::now() + c.spec.shutdown_timeout;
  if (c.kind == Kind::process)
    kill(c.process.pid, SIGTERM);
  else
    c.stop.request_stop();
  wake();  // the loop arms the deadline
}

std::chrono::milliseconds Supervisor::Impl::backoff(const Child& c) {
  if (opt.backoff_initial.count() == 0) return std::chrono::milliseconds(0);
  double base = static_cast<double>(opt.backoff_initial.count());
  double d = std::min(base * std::pow(2.0, std::min(c.attempt, 30)),
                      static_cast<double>(opt.backoff_max.count()));
  std::uniform_real_distribution<double> j(1.0 - opt.jitter, 1.0 + opt.jitter);
  return std::chrono::milliseconds(static_cast<std::int64_t>(d * j(rng)));
}

// Under mu: c ended and asks to be restarted (it is in Phase::backoff).
void Supervisor::Impl::on_restart(Child& c) {
  if (shutting_down) {
    apply(c, Event::stop);
    return;
  }
  const auto now = Clock::now();
  if (!intensity.record(now, opt.intensity, opt.period)) {
    gave_up = fmt::format("gave up: more than {} restarts in {}ms; last: worker '{}' {}",
                          opt.intensity, opt.period.count(), c.spec.name,
                          c.last_reason.empty() ? "exited" : "panicked: " + c.last_reason);
    apply(c, Event::give_up);
    wake();
    return;
  }
  if (now - c.started_at >= opt.period) c.attempt = 0;  // it had been healthy a while
  const auto delay = backoff(c);
  ++c.attempt;
  c.due = now + delay;
  if (opt.strategy != Strategy::one_for_one) {
    group_restarts.push_back(c.index);
  } else if (delay.count() == 0 && c.kind == Kind::thread) {
    apply(c, Event::start);  // the fast path: its host thread runs it again at once
    return;
  }
  wake();
}

// Under mu: c is in Phase::starting.
void Supervisor::Impl::run_worker(Child& c) {
  if (c.kind == Kind::thread) {
    c.cv.notify_one();  // its host enters the worker and reports Event::entered
    return;
  }
  auto spawned = detail::spawn_process(c.spec.process);
  c.started_at = Clock::now();
  ++c.starts;
  if (!spawned.error.empty()) {
    c.last_reason = std::move(spawned.error);
    spawn_failures.push_back(c.index);  // fed to the machine by the loop: no recursion here
    wake();
    return;
  }
  c.process = spawned.handle;
  apply(c, Event::entered);
  wake();  // the loop adds its pidfd to the poll set
}

// Under mu (released while waiting): start c and wait until it runs, so children start in
// order, as OTP starts them. For a thread worker: until its host thread has taken the start
// up and is calling the worker function.
void Supervisor::Impl::start_and_wait(Child& c, std::unique_lock<std::mutex>& lk) {
  if (!can(c, Event::start)) return;
  apply(c, Event::start);
  changed.wait(lk, [&] { return c.phase != Phase::starting || !spawn_failures.empty(); });
}

void Supervisor::Impl::host_loop(Child& c) {
  detail::ScopedAltStack altstack;  // for the panic hook's report of a stack overflow
  pthread_setname_np(pthread_self(), c.spec.name.substr(0, 15).c_str());
  std::unique_lock lk(mu);
  while (true) {
    c.cv.wait(lk, [&] { return c.phase == Phase::starting || c.host_exit; });
    if (c.host_exit) return;
    c.stop = std::stop_source{};
    c.started_at = Clock::now();
    ++c.starts;
    c.hb.beat();
    apply(c, Event::entered);
    auto token = c.stop.get_token();
    flush_logs(lk);  // e.g. the panic that led to this restart
    lk.unlock();
    Event end = Event::exited;
    std::string reason;
    try {
      c.spec.run(token, c.hb);
    } catch (const std::exception& e) {
      end = Event::panicked;
      reason = e.what();
    } catch (...) {
      end = Event::panicked;
      reason = "exception of unknown type";
    }
    lk.lock();
    apply(c, end, reason);
    if (c.phase != Phase::starting) flush_logs(lk);
  }
}

bool Supervisor::Impl::healthy() const {
  const auto now = Heartbeat::now_ns();
  for (const auto& c : children) {
    if (!c->spec.critical || c->spec.heartbeat_deadline.count() == 0) continue;
    const auto deadline =
        std::chrono::duration_cast<std::chrono::nanoseconds>(c->spec.heartbeat_deadline).count();
    if (c->phase != Phase::running || now - c->hb.last_ns() > deadline) return false;
  }
  return true;
}

std::string Supervisor::Impl::describe() const {
  std::string s;
  for (const auto& c : children) {
    s += fmt::format("{}{} {}", s.empty() ? "" : ", ", c->spec.name, detail::phase_name(c->phase));
    if (c->attempt > 0) s += fmt::format(" (restarts {})", c->attempt);
  }
  return s;
}

Supervisor::Supervisor(SupervisorOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->opt = std::move(options);
  impl_->rng.seed(impl_->opt.seed != 0
                      ? impl_->opt.seed
                      : static_cast<std::uint64_t>(Clock::now().time_since_epoch().count()));
}

void Supervisor::add(ChildSpec spec) {
  std::lock_guard lk(impl_->mu);
  auto c = std::make_unique<detail::Child>();
  c->kind = spec.process.empty() ? Kind::thread : Kind::process;
  c->spec = std::move(spec);
  c->index = impl_->children.size();
  detail::Child* raw = c.get();
  impl_->children.push_back(std::move(c));
  if (raw->kind == Kind::thread) raw->host = std::thread([this, raw] { impl_->host_loop(*raw); });
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
    if (c->spec.name == name)
      return {.state = detail::public_state(c->phase),
              .attempt = c->attempt,
              .next_try = c->due == kNever ? Clock::time_point{} : c->due,
              .last_reason = c->last_reason,
              .starts = c->starts};
  return {};
}

std::string Supervisor::describe() const {
  std::lock_guard lk(impl_->mu);
  return impl_->describe();
}

}  // namespace crashkit
