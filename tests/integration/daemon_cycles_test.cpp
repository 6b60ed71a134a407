// Many start -> READY -> SIGKILL -> reap cycles through Daemon + NotifyReceiver: no fd growth,
// no zombie, no survivor. And the harness itself SIGKILLed mid-run leaves nothing alive.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "../support/process_checks.hpp"
#include "crashkit/harness/daemon.hpp"
#include "crashkit/harness/placeholders.hpp"

namespace crashkit {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

const std::string kCli = CRASHKIT_CLI;
const std::string kFixture = CRASHKIT_NOTIFY_FIXTURE;

TEST(DaemonCycles, ThousandKillRestartCyclesLeakNoFdNoZombie) {
  auto dir = fs::temp_directory_path() / ("ck-cycles-" + std::to_string(getpid()));
  fs::create_directories(dir);
  Daemon::Options o;
  o.argv = {kFixture, "--mode", "ready", "--children", "1"};
  o.env = child_environment({});
  o.artifact_prefix = dir / "target";
  {
    // What lives as long as the process is opened by the first start (the capture thread's
    // epoll and eventfd, /dev/null); the count must not grow after it.
    auto rx = NotifyReceiver::bind((dir / "warm.sock").string());
    ASSERT_TRUE(rx) << rx.error().message;
    auto d = Daemon::start(o, *rx);
    ASSERT_TRUE(d) << d.error().message;
    d->kill();
  }
  int fds_before = test::open_fd_count();
  {
    auto rx = NotifyReceiver::bind((dir / "notify.sock").string());
    ASSERT_TRUE(rx) << rx.error().message;
    constexpr int kCycles = 1000;
    for (int i = 0; i < kCycles; ++i) {
      auto d = Daemon::start(o, *rx);
      ASSERT_TRUE(d) << d.error().message;
      auto w = d->wait_ready(10s);
      ASSERT_EQ(w.what, Daemon::Ready::ready) << "cycle " << i;
      auto s = d->kill();
      ASSERT_TRUE(s.status && s.status->killed_by(SIGKILL)) << "cycle " << i;
    }
    EXPECT_EQ(rx->counters().accepted, static_cast<std::uint64_t>(kCycles));
  }
  EXPECT_EQ(test::open_fd_count(), fds_before);
  EXPECT_TRUE(test::no_children_left());
  fs::remove_all(dir);
}

// Reads stderr lines from the harness until one contains `needle` (blocking reads).
bool read_until(int fd, const std::string& needle) {
  std::string buf;
  char c;
  while (read(fd, &c, 1) == 1) {
    buf += c;
    if (buf.find(needle) != std::string::npos) return true;
  }
  return false;
}

TEST(DaemonCycles, HarnessKilledMidRunLeavesNoProcessOfItsRun) {
  auto pidfile = fs::temp_directory_path() / ("ck-killed-" + std::to_string(getpid()) + ".pids");
  fs::remove(pidfile);
  int err[2];
  ASSERT_EQ(pipe2(err, O_CLOEXEC), 0);
  auto harness = Child::spawn(
      {.argv = {kCli, "run", "--fault", "sigkill", "--cycles", "100000", "--", kFixture, "--mode",
                "double-fork", "--children", "2", "--pidfile", pidfile.string()},
       .env = child_environment({}),
       .stderr_fd = err[1]});
  close(err[1]);
  ASSERT_TRUE(harness) << harness.error().message;
  ASSERT_TRUE(read_until(err[0], "cycle 3: recovered"));
  harness->signal(SIGKILL);
  EXPECT_TRUE(harness->wait().killed_by(SIGKILL));
  close(err[0]);
  // We are a subreaper: the sentinel and every orphan of the run are reparented to us. Reap
  // until none is left; this blocks until the sentinel has killed the run's daemons.
  int status = 0;
  while (waitpid(-1, &status, 0) > 0) {
  }
  std::ifstream in(pidfile);
  int count = 0;
  for (pid_t pid; in >> pid; ++count) EXPECT_TRUE(test::process_gone(pid)) << "pid " << pid;
  EXPECT_GE(count, 4 * 3);  // 4+ daemon starts, each the daemon and 2 children
  fs::remove(pidfile);
}

}  // namespace
}  // namespace crashkit
