// The supervisor's internals, shared by supervisor.cpp (events, actions, restarts) and
// run_loop.cpp (the loop thread: poll set, timers, signals, watchdog).
//
// Threads and locking. All child state lives under Impl::mu. Each thread worker has a host
// thread that runs it again and again; a process worker is spawned and watched (pidfd) by the
// loop thread. Whoever observes an event (a host thread: its worker returned or threw; the
// loop: a pidfd, a deadline, a timer, a signal) applies it with Impl::apply() under mu; the
// transition function is pure, so any of them may. The common restart (one_for_one, no
// backoff) thus happens inline on the host thread, with no wake-up of another thread. Every
// other decision (backoff timers, group restarts, stop order, giving up) is left to the loop,
// which is woken through an eventfd.
#pragma once

#include <poll.h>
#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <random>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "child_phase.hpp"
#include "crashkit/supervisor.hpp"
#include "process_worker.hpp"

namespace crashkit {

using Clock = std::chrono::steady_clock;
inline constexpr Clock::time_point kNever = Clock::time_point::max();

namespace detail {

struct Child {
  ChildSpec spec;
  std::size_t index = 0;
  Kind kind = Kind::thread;
  Phase phase = Phase::idle;
  Heartbeat hb;
  Clock::time_point due = kNever;       // backoff: when it starts again
  Clock::time_point deadline = kNever;  // stopping / cycling: when it is overdue
  Clock::time_point started_at{};
  int attempt = 0;  // consecutive restarts
  std::uint64_t starts = 0;
  std::string last_reason;
  // Thread workers.
  std::stop_source stop;
  std::condition_variable cv;  // the host waits here for Phase::starting or host_exit
  bool host_exit = false;      // the host thread's own lifetime, not the child's phase
  std::thread host;
  // Process workers.
  ProcessHandle process;
};

// OTP restart intensity: more than R restarts within T means give up. A ring of the last R
// restart times: O(1) per restart, flat however long the history.
class IntensityRing {
 public:
  bool record(Clock::time_point now, int intensity, std::chrono::milliseconds period);

 private:
  std::vector<Clock::time_point> ring_;
  std::size_t next_ = 0;
};

}  // namespace detail

struct Supervisor::Impl {
  using Child = detail::Child;
  using Event = detail::Event;
  using Phase = detail::Phase;

  SupervisorOptions opt;
  std::vector<std::unique_ptr<Child>> children;
  mutable std::mutex mu;
  std::condition_variable changed;  // a child left Phase::starting, or ended
  int wake_fd = -1;
  detail::IntensityRing intensity;
  std::mt19937_64 rng;
  std::vector<std::string> logs;  // lines to emit once mu is released
  // The loop's work, under mu.
  std::deque<std::size_t> group_restarts;  // children whose group is to be restarted, in order
  std::deque<std::size_t> stop_queue;      // stopped one at a time, each awaited, in this order
  Event stop_event = Event::stop;          // what stop_queue applies: stop or cycle
  std::deque<std::size_t> spawn_failures;  // process workers whose spawn failed (fed panicked)
  bool shutting_down = false;
  std::string gave_up;  // non-empty: intensity exceeded, with the reason
  std::atomic<bool> stop_requested{false};

  Impl();
  ~Impl();

  // --- supervisor.cpp: events and actions (all under mu) ---
  detail::Transition apply(Child& c, Event e, std::string_view reason = {});
  bool can(const Child& c, Event e) const;
  void log(std::string line);
  void flush_logs(std::unique_lock<std::mutex>& lk);  // emits outside mu, relocks
  void wake();
  void host_loop(Child& c);
  void start_and_wait(Child& c, std::unique_lock<std::mutex>& lk);
  void on_restart(Child& c);
  void run_worker(Child& c);
  void request_stop_of(Child& c);
  std::chrono::milliseconds backoff(const Child& c);
  bool healthy() const;
  std::string describe() const;

  // --- run_loop.cpp: the loop thread's steps (under mu) ---
  void begin_shutdown();
  void begin_group_restart(std::size_t failed);
  void advance_stop_queue();
  void start_due(std::unique_lock<std::mutex>& lk);
  void fire_deadlines(Clock::time_point now);
  Clock::time_point next_timer() const;
  bool step(std::unique_lock<std::mutex>& lk);  // false: shutdown complete
  void reap_ended(const std::vector<pollfd>& poll_set, const std::vector<std::size_t>& owners);
  bool healthy_now() const;  // takes mu
};

}  // namespace crashkit
