// Supervisor restart latency. Thread worker: the worker stamps the clock just before it
// throws and again on entry; the difference is throw -> running again (backoff off). Reported
// per window of the restart history, to show it stays flat (the intensity tally is a ring, O(1)).
// Process worker: a worker that exits 1 at once; the time per crash -> restart cycle.
//
//   restart_latency [THREAD_RESTARTS] [PROCESS_RESTARTS] 2>/dev/null   (defaults: 100000, 300)
#include <spawn.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <thread>
#include <vector>

#include "crashkit/supervisor.hpp"

extern char** environ;
using Clock = std::chrono::steady_clock;

namespace {

// Thread worker restarts (backoff off); returns the latencies in restart order.
std::vector<double> thread_restarts(std::size_t n, bool log_panics) {
  std::vector<double> lat_us;
  lat_us.reserve(n);
  Clock::time_point thrown{};
  std::atomic<bool> done{false};
  crashkit::SupervisorOptions opts{.intensity = static_cast<int>(n + 10),
                                   .period = std::chrono::milliseconds(3600000),
                                   .backoff_initial = std::chrono::milliseconds(0),
                                   .notify = false};
  if (!log_panics) opts.log = nullptr;
  crashkit::Supervisor sup(opts);
  sup.add({.name = "thrower", .run = [&](std::stop_token st, crashkit::Heartbeat&) {
             auto entered = Clock::now();
             if (thrown != Clock::time_point{})
               lat_us.push_back(
                   std::chrono::duration<double, std::micro>(entered - thrown).count());
             if (lat_us.size() >= n) {
               done = true;
               while (!st.stop_requested()) std::this_thread::yield();
               return;
             }
             thrown = Clock::now();
             throw std::runtime_error("bench");
           }});
  std::thread t([&] { sup.run(); });
  while (!done) std::this_thread::yield();
  sup.request_stop();
  t.join();
  return lat_us;
}

void report(std::vector<double> lat_us, std::size_t n, const char* what) {
  std::printf("thread worker: throw -> running again, %zu restarts, backoff off, %s\n",
              lat_us.size(), what);
  std::printf("  %-22s %10s %10s\n", "restarts (window)", "p50 us", "p99 us");
  for (std::size_t from :
       {std::size_t{0}, std::size_t{500}, std::size_t{2000}, std::size_t{20000}, n - n / 10}) {
    std::size_t to = std::min(
        lat_us.size(), from == 0 ? std::size_t{500} : from + std::max<std::size_t>(500, n / 10));
    if (from >= to) continue;
    std::vector<double> w(lat_us.begin() + static_cast<long>(from),
                          lat_us.begin() + static_cast<long>(to));
    std::sort(w.begin(), w.end());
    std::printf("  %8zu..%-12zu %10.2f %10.2f\n", from, to, w[w.size() / 2],
                w[w.size() * 99 / 100]);
  }
  std::sort(lat_us.begin(), lat_us.end());
  std::printf("  all: p50 %.2f us, p99 %.2f us (goals: p50 <= 5 us, p99 <= 50 us)\n",
              lat_us[lat_us.size() / 2], lat_us[lat_us.size() * 99 / 100]);
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t n = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 100000;
  const std::size_t np = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 300;
  // The default: each panic is a line on stderr (run with 2>/dev/null to keep the terminal).
  report(thread_restarts(n, true), n, "panics logged to stderr (default)");
  report(thread_restarts(n, false), n, "log hook off (.log = nullptr)");

  crashkit::Supervisor psup({.intensity = static_cast<int>(np + 10),
                             .period = std::chrono::milliseconds(3600000),
                             .backoff_initial = std::chrono::milliseconds(0),
                             .notify = false});
  psup.add({.name = "crasher", .process = {"/bin/false"}});
  auto t0 = Clock::now();
  std::thread pt([&] { psup.run(); });
  // Poll gently: a spinning reader would contend for the supervisor's mutex on 2 cores.
  while (psup.status("crasher").starts < np + 1)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count() /
              static_cast<double>(np);
  psup.request_stop();
  pt.join();
  // Baseline in the same run: the bare spawn + exit + reap of the same binary.
  auto r0 = Clock::now();
  for (std::size_t i = 0; i < np; ++i) {
    pid_t pid;
    char* args[] = {const_cast<char*>("/bin/false"), nullptr};
    posix_spawn(&pid, "/bin/false", nullptr, nullptr, args, environ);
    int st;
    waitpid(pid, &st, 0);
  }
  double raw = std::chrono::duration<double, std::milli>(Clock::now() - r0).count() /
               static_cast<double>(np);
  std::printf(
      "process worker: crash -> running again (spawn + exec + exit + reap), mean %.3f ms over %zu "
      "restarts (goal <= 3 ms)\n",
      ms, np);
  std::printf("  raw posix_spawn + waitpid of the same binary: %.3f ms (ratio %.2f)\n", raw,
              ms / raw);
  return 0;
}
