// A daemon built on the supervisor, under the harness's NotifyReceiver: READY arrives,
// WATCHDOG pings arrive while the critical worker beats and stop when it hangs, SIGTERM gives
// STOPPING=1 and exit 0, and the process worker is gone afterwards.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>

#include "../support/process_checks.hpp"
#include "crashkit/harness/daemon.hpp"
#include "crashkit/harness/placeholders.hpp"

namespace crashkit {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

const std::string kSuperd = CRASHKIT_SUPERD;

class SupervisedDaemon : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("ck-superd-" + std::to_string(getpid()));
    fs::create_directories(dir_);
    auto rx = NotifyReceiver::bind((dir_ / "n.sock").string());
    ASSERT_TRUE(rx);
    rx_.emplace(std::move(*rx));
  }
  void TearDown() override {
    rx_.reset();
    fs::remove_all(dir_);
  }
  Daemon start(std::vector<std::string> args) {
    Daemon::Options o;
    o.argv = {kSuperd};
    o.argv.insert(o.argv.end(), args.begin(), args.end());
    o.env = child_environment({"WATCHDOG_USEC=40000"});  // pings every 20 ms
    o.artifact_prefix = dir_ / "superd";
    auto d = Daemon::start(o, *rx_);
    EXPECT_TRUE(d) << d.error().message;
    return std::move(*d);
  }
  fs::path dir_;
  std::optional<NotifyReceiver> rx_;
};

TEST_F(SupervisedDaemon, ReadyWatchdogAndGracefulStop) {
  auto d = start({});
  ASSERT_EQ(d.wait_ready(10s).what, Daemon::Ready::ready);
  EXPECT_EQ(
      rx_->wait([](const NotifyState& s) { return s.watchdog_pings >= 5; }, Clock::now() + 10s),
      NotifyReceiver::Wake::condition);
  EXPECT_NE(rx_->state().status.find("ticker running"), std::string::npos) << rx_->state().status;
  auto stop = d.stop(SIGTERM, 10s);
  EXPECT_FALSE(stop.escalated);
  ASSERT_TRUE(stop.status.has_value());
  EXPECT_TRUE(stop.status->success()) << stop.status->describe();
  rx_->drain();
  EXPECT_TRUE(rx_->state().stopping);
  EXPECT_TRUE(test::no_children_left());  // the process worker was stopped and reaped
}

TEST_F(SupervisedDaemon, HungCriticalWorkerStopsTheWatchdogPings) {
  auto d = start({"--hang-after-ms", "300"});
  ASSERT_EQ(d.wait_ready(10s).what, Daemon::Ready::ready);
  ASSERT_EQ(
      rx_->wait([](const NotifyState& s) { return s.watchdog_pings >= 3; }, Clock::now() + 10s),
      NotifyReceiver::Wake::condition);
  // After the hang (300 ms) plus the deadline (50 ms) no further ping may come. Observe a window
  // of many ping intervals once the hang has surely set in.
  rx_->wait([](const NotifyState&) { return false; }, Clock::now() + 600ms);
  auto frozen = rx_->state().watchdog_pings;
  rx_->wait([](const NotifyState&) { return false; }, Clock::now() + 300ms);
  EXPECT_EQ(rx_->state().watchdog_pings, frozen);
  EXPECT_TRUE(d.stop(SIGTERM, 10s).status->success());
}

}  // namespace
}  // namespace crashkit
