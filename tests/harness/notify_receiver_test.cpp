// NotifyReceiver against datagrams sent from this process and from forked senders.
#include "crashkit/harness/notify_receiver.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <filesystem>

#include "../support/process_checks.hpp"

namespace crashkit {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

class NotifyReceiverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("ck-rx-" + std::to_string(getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Sends like sd_notify does, optionally passing an fd with SCM_RIGHTS.
  static void send_to(const std::string& address, std::string_view data, int pass_fd = -1) {
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::memcpy(sa.sun_path, address.data(), address.size());
    socklen_t len = offsetof(sockaddr_un, sun_path) + address.size() + 1;
    if (address[0] == '@') {
      sa.sun_path[0] = '\0';
      len -= 1;
    }
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0);
    iovec iov{const_cast<char*>(data.data()), data.size()};
    msghdr msg{};
    msg.msg_name = &sa;
    msg.msg_namelen = len;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    if (pass_fd >= 0) {
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
      cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int));
      std::memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
    }
    ASSERT_GE(sendmsg(fd, &msg, 0), 0) << std::strerror(errno);
    close(fd);
  }

  // Sends from a forked process (a different pid than ours), then reaps it.
  static void send_from_child(const std::string& address, std::string_view data) {
    pid_t p = fork();
    if (p == 0) {
      send_to(address, data);
      _exit(0);
    }
    int st = 0;
    waitpid(p, &st, 0);
  }

  fs::path dir_;
};

TEST_F(NotifyReceiverTest, FoldsSystemdKeysIntoState) {
  auto rx = NotifyReceiver::bind((dir_ / "n.sock").string());
  ASSERT_TRUE(rx) << rx.error().message;
  rx->set_main_pid(getpid());
  send_to(rx->address(), "STATUS=starting\nEXTEND_TIMEOUT_USEC=5000000");
  send_to(rx->address(), "WATCHDOG=1");
  send_to(rx->address(), "WATCHDOG=1\nERRNO=28");
  send_to(rx->address(), "X_CRASHKIT_FIRED=wal.sync@2\nX_OTHER=7");
  send_to(rx->address(), "READY=1\nSTATUS=serving\nMAINPID=" + std::to_string(getpid()));
  auto w = rx->wait([](const NotifyState& s) { return s.ready; }, Clock::now() + 5s);
  ASSERT_EQ(w, NotifyReceiver::Wake::condition);
  const auto& s = rx->state();
  EXPECT_EQ(s.status, "serving");
  EXPECT_EQ(s.watchdog_pings, 2u);
  EXPECT_EQ(s.errno_value, 28);
  EXPECT_EQ(s.extend_timeout, 5s);
  EXPECT_EQ(s.main_pid, getpid());
  ASSERT_EQ(s.fired.size(), 1u);
  EXPECT_EQ(s.fired[0], "wal.sync@2");
  EXPECT_EQ(s.extensions.at("X_OTHER"), "7");
  EXPECT_TRUE(s.ready_at.has_value());
  EXPECT_EQ(rx->counters().accepted, 5u);
  EXPECT_EQ(rx->counters().rejected(), 0u);
  send_to(rx->address(), "STOPPING=1");
  rx->wait([](const NotifyState& st) { return st.stopping; }, Clock::now() + 5s);
  EXPECT_TRUE(rx->state().stopping);
}

// EXTEND_TIMEOUT_USEC= as systemd takes it, on a READY deadline that has already passed: a value
// whose sum with the clock saturates moves it out for good (no deadline); 0 and 2^64-1 are
// ignored. The first look at the state sends READY=1, so only a wait whose deadline moved out
// polls and hears it.
TEST_F(NotifyReceiverTest, ExtendTimeoutMovesAPassedReadyDeadline) {
  auto wait_for_ready = [&](const std::string& extend) {
    auto rx = NotifyReceiver::bind((dir_ / "n.sock").string());
    EXPECT_TRUE(rx) << rx.error().message;
    if (!rx) return NotifyReceiver::Wake::watched_fd;
    rx->set_main_pid(getpid());
    send_to(rx->address(), extend);
    bool sent = false;
    return rx->wait(
        [&](const NotifyState& s) {
          if (!sent) send_to(rx->address(), "READY=1");
          sent = true;
          return s.ready;
        },
        Clock::now() - 1s);
  };
  using Wake = NotifyReceiver::Wake;
  EXPECT_EQ(wait_for_ready("EXTEND_TIMEOUT_USEC=60000000"), Wake::condition);
  EXPECT_EQ(wait_for_ready("EXTEND_TIMEOUT_USEC=18446744073709551614"), Wake::condition);
  EXPECT_EQ(wait_for_ready("EXTEND_TIMEOUT_USEC=18446744073709551615"), Wake::timeout);
  EXPECT_EQ(wait_for_ready("EXTEND_TIMEOUT_USEC=0"), Wake::timeout);
}

// Once READY=1 came, the start timeout is over: an extension does not stretch the waits of a
// running daemon (a SIGKILL's delay). A timerfd bounds the test were it wrongly stretched.
TEST_F(NotifyReceiverTest, ExtendTimeoutDoesNotStretchWaitsAfterReady) {
  auto rx = NotifyReceiver::bind((dir_ / "n.sock").string());
  ASSERT_TRUE(rx) << rx.error().message;
  rx->set_main_pid(getpid());
  send_to(rx->address(), "READY=1\nEXTEND_TIMEOUT_USEC=60000000");
  rx->drain();
  ASSERT_TRUE(rx->state().ready);
  int bound = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
  ASSERT_GE(bound, 0);
  itimerspec its{};
  its.it_value.tv_sec = 5;
  timerfd_settime(bound, 0, &its, nullptr);
  int watch[1] = {bound};
  auto w = rx->wait([](const NotifyState&) { return false; }, Clock::now() + 10ms, watch);
  EXPECT_EQ(w, NotifyReceiver::Wake::timeout);
  close(bound);
}

TEST_F(NotifyReceiverTest, CountsAndIgnoresBadDatagrams) {
  auto rx = NotifyReceiver::bind((dir_ / "n.sock").string());
  ASSERT_TRUE(rx);
  rx->set_main_pid(getpid());
  using namespace std::string_view_literals;
  send_to(rx->address(), "READY=1\0X=1"sv);
  send_to(rx->address(), std::string(kNotifyDatagramMax + 100, 'A'));
  send_to(rx->address(), "garbage");
  send_from_child(rx->address(), "READY=1");  // foreign sender under NotifyAccess=main
  rx->drain();
  EXPECT_FALSE(rx->state().ready);
  EXPECT_EQ(rx->counters().malformed, 2u);
  EXPECT_EQ(rx->counters().oversized, 1u);
  EXPECT_EQ(rx->counters().foreign_sender, 1u);
  EXPECT_EQ(rx->counters().accepted, 0u);
}

TEST_F(NotifyReceiverTest, AccessAllHearsAnyProcess) {
  auto rx = NotifyReceiver::bind((dir_ / "n.sock").string(), NotifyAccess::all);
  ASSERT_TRUE(rx);
  rx->set_main_pid(1);  // not us, not the child
  send_from_child(rx->address(), "READY=1");
  EXPECT_EQ(rx->wait([](const NotifyState& s) { return s.ready; }, Clock::now() + 5s),
            NotifyReceiver::Wake::condition);
}

TEST_F(NotifyReceiverTest, MainPidAnnouncedByMainIsHeard) {
  auto rx = NotifyReceiver::bind((dir_ / "n.sock").string());
  ASSERT_TRUE(rx);
  rx->set_main_pid(getpid());
  int go[2];
  ASSERT_EQ(pipe(go), 0);
  pid_t helper = fork();
  if (helper == 0) {
    char c;
    close(go[1]);
    while (read(go[0], &c, 1) > 0) {
    }
    send_to(rx->address(), "READY=1");
    _exit(0);
  }
  close(go[0]);
  send_to(rx->address(), "MAINPID=" + std::to_string(helper));
  rx->drain();  // the announcement must be applied before the helper speaks
  close(go[1]);
  EXPECT_EQ(rx->wait([](const NotifyState& s) { return s.ready; }, Clock::now() + 5s),
            NotifyReceiver::Wake::condition);
  int st = 0;
  waitpid(helper, &st, 0);
  EXPECT_EQ(rx->counters().foreign_sender, 0u);
}

TEST_F(NotifyReceiverTest, ClosesPassedFileDescriptors) {
  auto rx = NotifyReceiver::bind((dir_ / "n.sock").string());
  ASSERT_TRUE(rx);
  rx->set_main_pid(getpid());
  int before = test::open_fd_count();
  int passed = open("/dev/null", O_RDONLY | O_CLOEXEC);
  send_to(rx->address(), "FDSTORE=1", passed);
  close(passed);
  rx->drain();
  EXPECT_EQ(rx->counters().fds_closed, 1u);
  EXPECT_EQ(test::open_fd_count(), before);
}

TEST_F(NotifyReceiverTest, AbstractAndOverlongAddresses) {
  std::string name = "@crashkit-test-" + std::to_string(getpid());
  auto rx = NotifyReceiver::bind(name);
  ASSERT_TRUE(rx) << rx.error().message;
  EXPECT_EQ(rx->address(), name);
  rx->set_main_pid(getpid());
  send_to(rx->address(), "READY=1");
  EXPECT_EQ(rx->wait([](const NotifyState& s) { return s.ready; }, Clock::now() + 5s),
            NotifyReceiver::Wake::condition);

  fs::path deep = dir_ / std::string(120, 'd');
  fs::create_directories(deep);
  auto rx2 = NotifyReceiver::bind((deep / "n.sock").string());
  ASSERT_TRUE(rx2) << rx2.error().message;
  EXPECT_EQ(rx2->address()[0], '@');  // fell back to an abstract name that fits
  rx2->set_main_pid(getpid());
  send_to(rx2->address(), "READY=1");
  EXPECT_EQ(rx2->wait([](const NotifyState& s) { return s.ready; }, Clock::now() + 5s),
            NotifyReceiver::Wake::condition);
}

TEST_F(NotifyReceiverTest, WaitTimesOutAndWakesOnWatchedFd) {
  auto rx = NotifyReceiver::bind((dir_ / "n.sock").string());
  ASSERT_TRUE(rx);
  auto start = Clock::now();
  EXPECT_EQ(rx->wait([](const NotifyState& s) { return s.ready; }, start + 50ms),
            NotifyReceiver::Wake::timeout);
  EXPECT_GE(Clock::now() - start, 50ms);
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  ASSERT_EQ(write(p[1], "x", 1), 1);
  int watch[1] = {p[0]};
  EXPECT_EQ(rx->wait([](const NotifyState& s) { return s.ready; }, Clock::now() + 5s, watch),
            NotifyReceiver::Wake::watched_fd);
  close(p[0]);
  close(p[1]);
}

TEST_F(NotifyReceiverTest, UnwritableDirectoryIsAUsageError) {
  auto rx = NotifyReceiver::bind("/nonexistent-dir/n.sock");
  ASSERT_FALSE(rx);
  EXPECT_EQ(rx.error().kind, ErrorKind::usage);
  EXPECT_NE(rx.error().message.find("/nonexistent-dir/n.sock"), std::string::npos);
}

TEST_F(NotifyReceiverTest, DestructorUnlinksSocket) {
  auto path = dir_ / "n.sock";
  {
    auto rx = NotifyReceiver::bind(path.string());
    ASSERT_TRUE(rx);
    EXPECT_TRUE(fs::exists(path));
  }
  EXPECT_FALSE(fs::exists(path));
}

}  // namespace
}  // namespace crashkit
