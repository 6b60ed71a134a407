// The panic hook: terminate and fatal-signal reports, then the default action.
#include "crashkit/panic.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>

#include <stdexcept>
#include <thread>

namespace {

void throw_boom() {
  throw std::runtime_error("boom in worker");
}
// An exception escaping a thread's function calls std::terminate.
void throw_in_noexcept() noexcept {
  throw_boom();
}

TEST(PanicDeathTest, TerminateReportsThreadExceptionAndBacktrace) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        crashkit::install_panic_hook();
        std::thread t([] {
          prctl(PR_SET_NAME, "wal-writer");
          throw_in_noexcept();
        });
        t.join();
      },
      ::testing::KilledBySignal(SIGABRT),
      "panic: thread 'wal-writer': std::terminate\nuncaught exception: boom in worker\nbacktrace:");
}

TEST(PanicDeathTest, FatalSignalIsReportedAndReraised) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        crashkit::install_panic_hook();
        prctl(PR_SET_NAME, "segv-thread");
        raise(SIGSEGV);
      },
      ::testing::KilledBySignal(SIGSEGV),
      "panic: thread 'segv-thread': fatal signal SIGSEGV\nbacktrace:");
  EXPECT_EXIT(
      {
        crashkit::install_panic_hook();
        volatile int zero = 0;
        volatile int x = 7 / zero;  // a real #DE fault, not raise()
        (void)x;
      },
      ::testing::KilledBySignal(SIGFPE), "fatal signal SIGFPE");
  EXPECT_EXIT(
      {
        crashkit::install_panic_hook();
        int* volatile p = nullptr;
        *p = 1;  // a real fault: the handler runs, then the default action
      },
      ::testing::KilledBySignal(SIGSEGV), "fatal signal SIGSEGV\nbacktrace:");
}

}  // namespace
