// Supervisor: strategies, restart types, intensity, backoff, shutdown order, watchdog gating,
// signals, process workers. Workers report through atomics and condition variables; no test
// sleeps to synchronise.
#include "crashkit/supervisor.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <mutex>
#include <stdexcept>
#include <string_view>
#include <thread>

#include "crashkit/harness/notify_receiver.hpp"

namespace crashkit {
namespace {

using namespace std::chrono_literals;

// Blocks a worker until its stop is requested (no spinning).
void await_stop(std::stop_token st) {
  std::mutex m;
  std::condition_variable_any cv;
  std::unique_lock lk(m);
  cv.wait(lk, st, [] { return false; });
}

// A worker that panics the first `panics` times it runs, then runs until stopped.
struct Flaky {
  std::atomic<int> runs{0};
  int panics = 0;
  void operator()(std::stop_token st, Heartbeat&) {
    if (runs.fetch_add(1) < panics) throw std::runtime_error("flaky");
    await_stop(st);
  }
};

ChildSpec spec(const std::string& name, Flaky& f, Restart r = Restart::permanent) {
  return {
      .name = name, .run = [&f](std::stop_token st, Heartbeat& hb) { f(st, hb); }, .restart = r};
}

SupervisorOptions quiet(Strategy s = Strategy::one_for_one) {
  return {
      .strategy = s, .intensity = 10, .period = 5000ms, .backoff_initial = 0ms, .notify = false};
}

// Waits until `pred()` holds, at most `limit`; the failure names what never happened. Every
// wait in these tests has a deadline: a missing restart fails the test, it does not hang it.
template <typename Pred>
::testing::AssertionResult eventually(Pred pred, std::string_view what,
                                      std::chrono::milliseconds limit = 20000ms) {
  const auto end = Clock::now() + limit;
  while (!pred()) {
    if (Clock::now() > end)
      return ::testing::AssertionFailure()
             << "waited " << limit.count() << " ms for: " << what << " (it never happened)";
    std::this_thread::yield();
  }
  return ::testing::AssertionSuccess();
}

// Runs the supervisor on a thread until `done()` holds (at most 20 s), then stops it.
template <typename Done>
int supervise(Supervisor& sup, Done done, std::string_view what = "the expected restarts") {
  auto rc = std::async(std::launch::async, [&] { return sup.run(); });
  EXPECT_TRUE(eventually(done, what));
  sup.request_stop();
  if (rc.wait_for(20s) != std::future_status::ready) {
    ADD_FAILURE() << "run() did not return within 20 s of request_stop()";
    std::abort();  // fail now rather than hang until ctest's timeout
  }
  return rc.get();
}

TEST(Supervisor, OneForOneRestartsOnlyTheFailedChild) {
  Flaky a, b{.panics = 1}, c;
  Supervisor sup(quiet());
  sup.add(spec("a", a));
  sup.add(spec("b", b));
  sup.add(spec("c", c));
  EXPECT_EQ(supervise(sup, [&] { return b.runs == 2 && a.runs == 1 && c.runs == 1; }),
            kExitGraceful);
  EXPECT_EQ(a.runs, 1);
  EXPECT_EQ(c.runs, 1);
  EXPECT_EQ(sup.status("b").starts, 2u);
  EXPECT_EQ(sup.status("b").last_reason, "flaky");
}

TEST(Supervisor, OneForAllRestartsEveryChild) {
  Flaky a, b{.panics = 1}, c;
  Supervisor sup(quiet(Strategy::one_for_all));
  sup.add(spec("a", a));
  sup.add(spec("b", b));
  sup.add(spec("c", c));
  supervise(sup, [&] { return a.runs == 2 && b.runs == 2 && c.runs == 2; });
  EXPECT_EQ(a.runs, 2);
  EXPECT_EQ(c.runs, 2);
}

TEST(Supervisor, OneForAllRestartsTheGroupAfterTheFailedChildsBackoff) {
  std::mutex m;
  std::vector<Clock::time_point> a_starts;
  Clock::time_point b_failed{};
  std::atomic<int> b_runs{0};
  Supervisor sup({.strategy = Strategy::one_for_all,
                  .intensity = 10,
                  .backoff_initial = 30ms,
                  .jitter = 0,
                  .notify = false});
  sup.add({.name = "a", .run = [&](std::stop_token st, Heartbeat&) {
             {
               std::lock_guard lk(m);
               a_starts.push_back(Clock::now());
             }
             await_stop(st);
           }});
  sup.add({.name = "b", .run = [&](std::stop_token st, Heartbeat&) {
             if (b_runs.fetch_add(1) == 0) {
               std::lock_guard lk(m);
               b_failed = Clock::now();
               throw std::runtime_error("once");
             }
             await_stop(st);
           }});
  supervise(sup, [&] {
    std::lock_guard lk(m);
    return a_starts.size() >= 2 && b_runs >= 2;
  });
  // The healthy sibling waits out the failed child's backoff too (a lower bound: exact).
  auto gap = std::chrono::duration<double, std::milli>(a_starts[1] - b_failed).count();
  EXPECT_GE(gap, 30.0);
}

TEST(Supervisor, RestForOneRestartsTheFailedAndLaterChildren) {
  Flaky a, b{.panics = 1}, c;
  Supervisor sup(quiet(Strategy::rest_for_one));
  sup.add(spec("a", a));
  sup.add(spec("b", b));
  sup.add(spec("c", c));
  supervise(sup, [&] { return b.runs == 2 && c.runs == 2; });
  EXPECT_EQ(a.runs, 1);
}

TEST(Supervisor, RestartTypes) {
  std::atomic<int> perm{0}, trans_ok{0}, trans_panic{0}, temp{0};
  Supervisor sup(quiet());
  sup.add({.name = "permanent", .run = [&](std::stop_token st, Heartbeat&) {
             if (perm++ == 0) return;  // a normal exit is restarted too
             await_stop(st);
           }});
  sup.add({.name = "transient-ok",
           .run = [&](std::stop_token, Heartbeat&) { ++trans_ok; },
           .restart = Restart::transient});
  sup.add({.name = "transient-panic",
           .run =
               [&](std::stop_token st, Heartbeat&) {
                 if (trans_panic++ == 0) throw std::runtime_error("once");
                 await_stop(st);
               },
           .restart = Restart::transient});
  sup.add({.name = "temporary",
           .run =
               [&](std::stop_token, Heartbeat&) {
                 ++temp;
                 throw std::runtime_error("gone");
               },
           .restart = Restart::temporary});
  supervise(sup, [&] {
    return perm >= 2 && trans_panic >= 2 &&
           sup.status("temporary").state == WorkerStatus::State::failed &&
           sup.status("transient-ok").state == WorkerStatus::State::stopped;
  });
  EXPECT_EQ(trans_ok, 1);
  EXPECT_EQ(temp, 1);
  EXPECT_EQ(sup.status("temporary").last_reason, "gone");
}

TEST(Supervisor, IntensityExhaustedGivesUpWithDistinctStatus) {
  std::atomic<int> runs{0};
  Supervisor sup({.intensity = 3, .period = 60000ms, .backoff_initial = 0ms, .notify = false});
  Flaky steady;
  sup.add(spec("steady", steady));
  sup.add({.name = "doomed", .run = [&](std::stop_token, Heartbeat&) {
             ++runs;
             throw std::runtime_error("always");
           }});
  EXPECT_EQ(sup.run(), kExitGaveUp);
  EXPECT_EQ(runs, 4);  // the first start and 3 restarts; the 4th restart is one too many
  EXPECT_EQ(sup.status("doomed").state, WorkerStatus::State::failed);
  EXPECT_EQ(sup.status("steady").state, WorkerStatus::State::stopped);
}

TEST(Supervisor, BackoffGrowsAndIsCapped) {
  std::vector<Clock::time_point> starts;
  std::mutex m;
  Supervisor sup({.intensity = 100,
                  .backoff_initial = 10ms,
                  .backoff_max = 40ms,
                  .jitter = 0.2,
                  .seed = 42,
                  .notify = false});
  sup.add({.name = "w", .run = [&](std::stop_token st, Heartbeat&) {
             std::size_t n;
             {
               std::lock_guard lk(m);
               starts.push_back(Clock::now());
               n = starts.size();
             }
             if (n < 6) throw std::runtime_error("again");
             await_stop(st);
           }});
  supervise(sup, [&] {
    std::lock_guard lk(m);
    return starts.size() >= 6;
  });
  // Lower bounds are exact (a restart never comes early): 10, 20, 40, 40, 40 ms -20%.
  const double expected_ms[] = {10, 20, 40, 40, 40};
  for (int i = 0; i < 5; ++i) {
    auto gap = std::chrono::duration<double, std::milli>(starts[i + 1] - starts[i]).count();
    EXPECT_GE(gap, expected_ms[i] * 0.8) << "restart " << i + 1;
  }
  EXPECT_EQ(sup.status("w").attempt, 5);
}

TEST(Supervisor, StopsInReverseOrderAndAbandonsAnOverrunningWorker) {
  std::vector<std::string> stopped;
  std::mutex m;
  auto worker = [&](const std::string& name) {
    return [&, name](std::stop_token st, Heartbeat&) {
      await_stop(st);
      std::lock_guard lk(m);
      stopped.push_back(name);
    };
  };
  std::atomic<bool> release{false};
  auto sup = std::make_unique<Supervisor>(quiet());
  sup->add({.name = "first", .run = worker("first")});
  sup->add({.name = "stubborn",
            .run =
                [&](std::stop_token, Heartbeat&) {
                  while (!release) std::this_thread::yield();
                },
            .shutdown_timeout = 50ms});
  sup->add({.name = "last", .run = worker("last")});
  supervise(*sup, [&] {
    return sup->status("last").state == WorkerStatus::State::running &&
           sup->status("stubborn").state == WorkerStatus::State::running;
  });
  {
    std::lock_guard lk(m);
    EXPECT_EQ(stopped, (std::vector<std::string>{"last", "first"}));
  }
  release = true;  // let the abandoned worker finish so the test leaves no thread spinning
  EXPECT_TRUE(
      eventually([&] { return sup->status("stubborn").state == WorkerStatus::State::stopped; },
                 "the abandoned worker to end once released"));
  sup.reset();
}

TEST(Supervisor, ProcessWorkersPanicOnSignalsAndCodesAndAreRestarted) {
  Supervisor sup(quiet());
  sup.add({.name = "segv",
           .process = {"/bin/sh", "-c", "kill -SEGV $$"},
           .restart = Restart::transient});
  sup.add({.name = "code", .process = {"/bin/sh", "-c", "exit 3"}, .restart = Restart::transient});
  sup.add({.name = "fine", .process = {"/bin/sh", "-c", "exit 0"}, .restart = Restart::transient});
  supervise(sup, [&] {
    return sup.status("segv").starts >= 2 && sup.status("code").starts >= 2 &&
           sup.status("fine").state == WorkerStatus::State::stopped;
  });
  EXPECT_EQ(sup.status("segv").last_reason, "killed by SIGSEGV");
  EXPECT_EQ(sup.status("code").last_reason, "exited with code 3");
  EXPECT_EQ(sup.status("fine").starts, 1u);
}

TEST(Supervisor, ProcessWorkerIsTerminatedOnStop) {
  Supervisor sup(quiet());
  sup.add({.name = "sleeper", .process = {"/bin/sleep", "60"}, .shutdown_timeout = 2000ms});
  auto t0 = Clock::now();
  supervise(sup, [&] { return sup.status("sleeper").state == WorkerStatus::State::running; });
  EXPECT_LT(Clock::now() - t0, 30s);
  EXPECT_EQ(sup.status("sleeper").state, WorkerStatus::State::stopped);
}

// A worker that panics on its first run, then runs until stopped; `runs` counts its runs.
std::function<void(std::stop_token, Heartbeat&)> panics_once(std::atomic<int>& runs) {
  return [&runs](std::stop_token st, Heartbeat&) {
    if (runs.fetch_add(1) == 0) throw std::runtime_error("once");
    await_stop(st);
  };
}

// OTP waits for a killed child to exit before stopping the next; run() returns only when
// every process worker is reaped. A process that ignores SIGTERM is SIGKILLed at its
// shutdown_timeout, never abandoned alive.
TEST(Supervisor, ProcessIgnoringSigtermIsKilledAndReapedBeforeTheNextStop) {
  const auto pidfile =
      std::filesystem::temp_directory_path() / ("ck-stubborn-" + std::to_string(getpid()) + ".pid");
  std::atomic<pid_t> stubborn{0};
  std::atomic<int> alive_when_first_stopped{-1};
  std::vector<std::string> lines;
  std::mutex m;
  auto opts = quiet();
  opts.log = [&](std::string_view l) {
    std::lock_guard lk(m);
    lines.emplace_back(l);
  };
  Supervisor sup(opts);
  sup.add({.name = "first", .run = [&](std::stop_token st, Heartbeat&) {
             await_stop(st);
             // Stopped only after the later (stubborn) child is gone: it must be reaped by now.
             pid_t p = stubborn.load();
             alive_when_first_stopped = p > 0 && kill(p, 0) == 0 ? 1 : 0;
           }});
  sup.add({.name = "stubborn",
           .process = {"/bin/sh", "-c",
                       "trap '' TERM; echo $$ > " + pidfile.string() + "; while :; do :; done"},
           .shutdown_timeout = 100ms});
  auto read_pid = [&] {
    std::ifstream in(pidfile);
    pid_t p = 0;
    in >> p;
    if (p > 0) stubborn = p;
    return p > 0;
  };
  EXPECT_EQ(supervise(sup, read_pid, "the stubborn worker's pid file"), kExitGraceful);
  ASSERT_GT(stubborn.load(), 0);
  EXPECT_EQ(kill(stubborn, 0), -1) << "the worker outlived run()";
  EXPECT_EQ(errno, ESRCH) << "the worker is not reaped (a zombie)";
  EXPECT_EQ(alive_when_first_stopped, 0);
  EXPECT_EQ(sup.status("stubborn").state, WorkerStatus::State::stopped);
  EXPECT_EQ(sup.status("stubborn").last_reason, "killed by SIGKILL");
  std::lock_guard lk(m);
  EXPECT_NE(std::find(lines.begin(), lines.end(),
                      "worker 'stubborn' did not stop within 100ms; killing it"),
            lines.end());
  std::filesystem::remove(pidfile);
}

// After a one_for_all restart, OTP restarts every sibling, also one that took longer than its
// shutdown_timeout to stop: a thread is restarted when it finally ends.
TEST(Supervisor, GroupRestartRestartsAThreadSiblingThatOverranItsStop) {
  std::atomic<int> slow_runs{0}, b_runs{0};
  std::atomic<bool> slow_may_stop{false};
  Supervisor sup(quiet(Strategy::one_for_all));
  sup.add({.name = "slow",
           .run =
               [&](std::stop_token st, Heartbeat&) {
                 ++slow_runs;
                 await_stop(st);
                 while (slow_runs == 1 && !slow_may_stop) std::this_thread::yield();
               },
           .shutdown_timeout = 20ms});
  sup.add({.name = "b", .run = panics_once(b_runs)});
  supervise(
      sup,
      [&] {
        if (sup.status("slow").state == WorkerStatus::State::restarting && b_runs >= 2)
          slow_may_stop = true;  // the group went on without it; now let it end
        return slow_runs >= 2;
      },
      "the overrunning sibling to be restarted");
  EXPECT_EQ(slow_runs, 2);
  EXPECT_EQ(b_runs, 2);
}

// The same for a process sibling that ignores SIGTERM: SIGKILLed at its deadline, reaped, and
// started again with its group.
TEST(Supervisor, GroupRestartRestartsAProcessSiblingThatIgnoredSigterm) {
  std::atomic<int> b_runs{0};
  Supervisor sup(quiet(Strategy::one_for_all));
  sup.add({.name = "stubborn",
           .process = {"/bin/sh", "-c", "trap '' TERM; while :; do sleep 0.01; done"},
           .shutdown_timeout = 50ms});
  sup.add({.name = "b", .run = panics_once(b_runs)});
  supervise(
      sup,
      [&] {
        auto st = sup.status("stubborn");
        return st.starts >= 2 && st.state == WorkerStatus::State::running && b_runs >= 2;
      },
      "the stubborn process to be started again");
  EXPECT_EQ(sup.status("stubborn").starts, 2u);
}

// A worker abandoned during run() is not waited for a second time by the destructor.
TEST(Supervisor, DestructorDoesNotWaitAgainForAnAbandonedWorker) {
  std::atomic<bool> release{false};
  auto sup = std::make_unique<Supervisor>(quiet());
  sup->add({.name = "stubborn",
            .run =
                [&](std::stop_token, Heartbeat&) {
                  while (!release) std::this_thread::yield();
                },
            .shutdown_timeout = 100ms});
  supervise(*sup, [&] { return sup->status("stubborn").state == WorkerStatus::State::running; });
  const auto t0 = Clock::now();
  Supervisor* raw = sup.release();
  std::thread destroy([raw] { delete raw; });
  destroy.join();
  // Without the fix it waited another shutdown_timeout (100 ms) here, with release still false;
  // 10 s is far above any scheduling delay and far below "waits until released".
  EXPECT_LT(Clock::now() - t0, 10s);
  release = true;
  // The abandoned worker's state stays alive after the destructor: it can end safely.
}

TEST(Supervisor, LogHookReceivesPanicsAndNullSilencesThem) {
  std::vector<std::string> lines;
  std::mutex m;
  Flaky f{.panics = 2};
  auto opts = quiet();
  opts.log = [&](std::string_view l) {
    std::lock_guard lk(m);
    lines.emplace_back(l);
  };
  Supervisor sup(opts);
  sup.add(spec("w", f));
  supervise(sup, [&] { return f.runs >= 3; });
  {
    std::lock_guard lk(m);
    EXPECT_EQ(lines, (std::vector<std::string>{"worker 'w' panicked: flaky",
                                               "worker 'w' panicked: flaky"}));
  }
  Flaky g{.panics = 2};
  auto silent = quiet();
  silent.log = nullptr;
  Supervisor quiet_sup(silent);
  quiet_sup.add(spec("w", g));
  supervise(quiet_sup, [&] { return g.runs >= 3; });
  EXPECT_EQ(quiet_sup.status("w").last_reason, "flaky");  // still recorded, just not logged
}

class NotifyingSupervisor : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("ck-sup-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
    auto rx = NotifyReceiver::bind((dir_ / "n.sock").string());
    ASSERT_TRUE(rx);
    rx_.emplace(std::move(*rx));
    rx_->set_main_pid(getpid());
    setenv("NOTIFY_SOCKET", rx_->address().c_str(), 1);
  }
  void TearDown() override {
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
    rx_.reset();
    std::filesystem::remove_all(dir_);
  }
  std::filesystem::path dir_;
  std::optional<NotifyReceiver> rx_;
};

TEST_F(NotifyingSupervisor, WatchdogPingsOnlyWhileCriticalWorkersBeat) {
  setenv("WATCHDOG_USEC", "20000", 1);
  setenv("WATCHDOG_PID", std::to_string(getpid()).c_str(), 1);
  std::atomic<bool> hang{false};
  Supervisor sup({.backoff_initial = 0ms});
  sup.add({.name = "beater",
           .run =
               [&](std::stop_token st, Heartbeat& hb) {
                 while (!st.stop_requested()) {
                   if (!hang) hb.beat();
                   std::this_thread::yield();
                 }
               },
           .critical = true,
           .heartbeat_deadline = 30ms});
  std::thread t([&] { sup.run(); });
  EXPECT_EQ(rx_->wait([](const NotifyState& s) { return s.ready && s.watchdog_pings >= 5; },
                      Clock::now() + 10s),
            NotifyReceiver::Wake::condition);
  hang = true;
  // Once the deadline passed, no ping may arrive: wait out a window far longer than the
  // ping interval (10 ms) and the deadline (30 ms).
  rx_->wait([](const NotifyState&) { return false; }, Clock::now() + 60ms);
  auto frozen = rx_->state().watchdog_pings;
  rx_->wait([](const NotifyState&) { return false; }, Clock::now() + 200ms);
  EXPECT_EQ(rx_->state().watchdog_pings, frozen);
  hang = false;
  EXPECT_EQ(rx_->wait([&](const NotifyState& s) { return s.watchdog_pings > frozen; },
                      Clock::now() + 10s),
            NotifyReceiver::Wake::condition);
  sup.request_stop();
  t.join();
  rx_->drain();
  EXPECT_TRUE(rx_->state().stopping);
}

TEST_F(NotifyingSupervisor, SighupCallsTheReloadHookBetweenReloadingAndReady) {
  std::atomic<int> reloads{0};
  Supervisor::block_signals();
  Supervisor sup({.on_reload = [&] { ++reloads; }});
  Flaky w;
  sup.add(spec("w", w));
  std::thread t([&] { sup.run(); });
  // READY=1 is followed by STATUS=; both belong to start-up, before the reload.
  ASSERT_EQ(rx_->wait([](const NotifyState& s) { return s.ready && !s.status.empty(); },
                      Clock::now() + 10s),
            NotifyReceiver::Wake::condition);
  std::vector<std::string> keys;
  rx_->on_message = [&](pid_t, const NotifyMessage& m) {
    for (const auto& [k, v] : m.fields) keys.push_back(k);
  };
  kill(getpid(), SIGHUP);
  ASSERT_EQ(rx_->wait([&](const NotifyState&) { return reloads == 1 && keys.size() >= 3; },
                      Clock::now() + 10s),
            NotifyReceiver::Wake::condition);
  EXPECT_EQ(keys[0], "RELOADING");
  EXPECT_EQ(keys[1], "MONOTONIC_USEC");
  EXPECT_EQ(keys[2], "READY");
  sup.request_stop();
  t.join();
}

// READY=1 goes out only once every worker has been started, in order, and its host thread has
// taken the start up (status: running, started once). Whether the worker's own first statement
// has run by then cannot be known without its cooperation (docs/supervisor.md).
TEST_F(NotifyingSupervisor, ReadyOnlyAfterEveryWorkerHasBeenTakenUp) {
  Supervisor sup({.backoff_initial = 0ms});
  for (int i = 0; i < 4; ++i)
    sup.add({.name = "w" + std::to_string(i),
             .run = [&](std::stop_token st, Heartbeat&) { await_stop(st); }});
  std::atomic<int> running_at_ready{-1};
  rx_->on_message = [&](pid_t, const NotifyMessage& m) {
    for (const auto& [k, v] : m.fields) {
      if (k != "READY" || running_at_ready >= 0) continue;
      int n = 0;
      for (int i = 0; i < 4; ++i) {
        auto st = sup.status("w" + std::to_string(i));
        n += st.state == WorkerStatus::State::running && st.starts == 1;
      }
      running_at_ready = n;
    }
  };
  auto rc = std::async(std::launch::async, [&] { return sup.run(); });
  EXPECT_EQ(rx_->wait([](const NotifyState& s) { return s.ready; }, Clock::now() + 10s),
            NotifyReceiver::Wake::condition);
  EXPECT_EQ(running_at_ready, 4);
  sup.request_stop();
  EXPECT_EQ(rc.get(), kExitGraceful);
}

TEST(SupervisorDeathTest, SecondSigtermWhileStoppingExitsAtOnce) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        Supervisor::block_signals();
        std::atomic<bool> asked{false};
        Supervisor sup({.notify = false});
        sup.add({.name = "slow",
                 .run =
                     [&](std::stop_token st, Heartbeat&) {
                       await_stop(st);
                       asked = true;
                       while (true) std::this_thread::yield();  // never finishes stopping
                     },
                 .shutdown_timeout = 60000ms});
        std::thread killer([&] {
          if (!eventually([&] { return sup.status("slow").state == WorkerStatus::State::running; },
                          "slow to run"))
            std::_Exit(1);
          kill(getpid(), SIGTERM);
          if (!eventually([&] { return asked.load(); }, "the stop request")) std::_Exit(1);
          kill(getpid(), SIGTERM);
        });
        sup.run();
        std::exit(0);
      },
      ::testing::ExitedWithCode(kExitSecondSignal), "");
}

TEST(SupervisorDeathTest, FirstSigtermStopsGracefully) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        Supervisor::block_signals();
        Supervisor sup({.notify = false});
        Flaky w;
        sup.add(spec("w", w));
        std::thread killer([&] {
          if (!eventually([&] { return sup.status("w").state == WorkerStatus::State::running; },
                          "w to run"))
            std::_Exit(1);
          kill(getpid(), SIGTERM);
        });
        int rc = sup.run();
        killer.join();
        std::exit(rc == kExitGraceful && sup.status("w").state == WorkerStatus::State::stopped ? 0
                                                                                               : 1);
      },
      ::testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace crashkit
