// Supervisor: OTP-style supervision inside a daemon. Children are thread workers (a panic is
// an exception escaping the function) or process workers (death by signal or non-zero exit).
// Strategies one_for_one / one_for_all / rest_for_one; restart types permanent / transient /
// temporary; at most R restarts in T, then it gives up (STATUS=, stop all, exit non-zero so
// systemd's Restart= takes over). Capped exponential backoff with jitter between restarts.
//
//   crashkit::Supervisor sup({.strategy = crashkit::Strategy::one_for_one});
//   sup.add({.name = "writer", .run = [](std::stop_token st, crashkit::Heartbeat& hb) { ... }});
//   return sup.run();   // READY after start; SIGTERM: graceful; second SIGTERM: exit at once
//
// Each child is an explicit state machine (docs/supervisor.md has the table). Shutdown stops
// children in reverse start order and waits for each: a process worker gets SIGTERM, then
// SIGKILL after its shutdown_timeout, and run() returns only after it is reaped; a thread
// worker that overruns is abandoned (threads cannot be killed) and reported.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

namespace crashkit {

enum class Strategy { one_for_one, one_for_all, rest_for_one };
enum class Restart { permanent, transient, temporary };

// Exit statuses of Supervisor::run().
inline constexpr int kExitGraceful = 0;
inline constexpr int kExitGaveUp = 70;        // restart intensity exceeded (EX_SOFTWARE)
inline constexpr int kExitSecondSignal = 98;  // SIGTERM/SIGINT while already stopping

// A worker's liveness signal for the watchdog. beat() is one relaxed atomic store.
class Heartbeat {
 public:
  void beat() { last_ns_.store(now_ns(), std::memory_order_relaxed); }
  std::int64_t last_ns() const { return last_ns_.load(std::memory_order_relaxed); }
  static std::int64_t now_ns();

 private:
  std::atomic<std::int64_t> last_ns_{0};
};

struct ChildSpec {
  std::string name;
  // Thread worker: runs until it returns (normal exit) or throws (panic). Must return soon
  // after `stop` is requested.
  std::function<void(std::stop_token stop, Heartbeat& heartbeat)> run;
  // Process worker (instead of `run`): argv to spawn, e.g. {"/proc/self/exe", "--worker", "x"}.
  // SIGTERM on stop, SIGKILL after shutdown_timeout. Non-zero exit or a signal is a panic.
  std::vector<std::string> process;
  Restart restart = Restart::permanent;
  std::chrono::milliseconds shutdown_timeout{5000};
  // Critical workers gate the watchdog: pings stop while one has not beaten within
  // heartbeat_deadline (0: no deadline, never gates).
  bool critical = false;
  std::chrono::milliseconds heartbeat_deadline{0};
};

struct SupervisorOptions {
  Strategy strategy = Strategy::one_for_one;
  int intensity = 3;                              // at most this many restarts ...
  std::chrono::milliseconds period{5000};         // ... within this period
  std::chrono::milliseconds backoff_initial{10};  // 0 disables backoff
  std::chrono::milliseconds backoff_max{1000};
  double jitter = 0.2;              // +-20% of each backoff delay
  std::uint64_t seed = 0;           // jitter RNG seed (0: from the clock)
  bool notify = true;               // READY/STATUS/STOPPING/WATCHDOG via sd_notify
  std::function<void()> on_reload;  // SIGHUP, wrapped in RELOADING=1 / READY=1
  // One line per panic, overrun or give-up, without a trailing newline. Default: "crashkit: "
  // + line on stderr. Empty (nullptr): nothing is formatted or written. Called on the thread
  // that observed the event, outside the supervisor's lock.
  std::function<void(std::string_view line)> log = log_to_stderr;
  // Tests and embedders can drive the supervisor without signals: the loop exits when
  // request_stop() is called.

  static void log_to_stderr(std::string_view line);
};

struct WorkerStatus {
  enum class State { running, restarting, failed, stopped };
  State state = State::stopped;
  int attempt = 0;                                   // consecutive restarts
  std::chrono::steady_clock::time_point next_try{};  // restarting
  std::string last_reason;                           // last panic
  std::uint64_t starts = 0;                          // how often it was started
};

class Supervisor {
 public:
  explicit Supervisor(SupervisorOptions options = {});
  ~Supervisor();  // stops everything still running
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  void add(ChildSpec spec);  // before run()

  // Blocks SIGTERM/SIGINT/SIGHUP in the calling thread; call before any thread is started so
  // every thread inherits the mask and signalfd sees the signals.
  static void block_signals();

  // Starts the children in order, sends READY=1, supervises until SIGTERM/SIGINT (or
  // request_stop()), stops them in reverse order, returns an exit status (kExit*).
  int run();
  void request_stop();

  WorkerStatus status(const std::string& name) const;
  std::string describe() const;  // one line for STATUS=

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace crashkit
