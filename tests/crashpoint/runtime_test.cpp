// Crash points inside this test binary: registration, counting and the in-process mode.
#include <gtest/gtest.h>

#include <thread>

#include "crashkit/crash_point.hpp"
#include "crashkit/crash_point_control.hpp"
#include "crashkit/testing/crash.hpp"

// External linkage: a site inside a function the compiler drops as unused is never emitted,
// so it cannot be listed (documented in docs/crash-points.md).
void crashkit_test_never_called() {
  CRASHKIT_POINT("test.never.crossed");
}

namespace {

int put(int n) {
  int done = 0;
  for (int i = 0; i < n; ++i) {
    CRASHKIT_POINT("test.put.before");
    ++done;
    CRASHKIT_POINT("test.put.after");
  }
  return done;
}

int write_or_errno() {
  if (int e = CRASHKIT_FAULT("test.write")) return -e;
  return 1;
}

TEST(CrashPoint, EverySiteIsRegisteredWithoutRunning) {
  auto points = crashkit::compiled_crash_points();
  auto has = [&](const char* name, char kind) {
    for (const auto& p : points)
      if (p.name == name) return p.kind == kind;
    return false;
  };
  EXPECT_TRUE(has("test.put.before", 'P'));
  EXPECT_TRUE(has("test.put.after", 'P'));
  EXPECT_TRUE(has("test.write", 'F'));
  EXPECT_TRUE(has("test.never.crossed", 'P'));  // listed though no test reaches it
}

TEST(CrashPoint, RunWithCrashFiresAtTheNthCrossingOnThisThread) {
  auto r = crashkit::testing::run_with_crash("test.put.after", 3, [] { return put(10); });
  auto* fired = std::get_if<crashkit::testing::Fired>(&r);
  ASSERT_NE(fired, nullptr);
  EXPECT_EQ(fired->point, "test.put.after");
  EXPECT_EQ(fired->crossing, 3u);
  auto clean = crashkit::testing::run_with_crash("test.put.after", 11, [] { return put(10); });
  ASSERT_TRUE(std::holds_alternative<int>(clean));
  EXPECT_EQ(std::get<int>(clean), 10);
}

TEST(CrashPoint, RunWithCrashDoesNotTouchOtherThreads) {
  std::atomic<bool> go{false};
  int other_done = 0;
  std::thread other([&] {
    while (!go.load()) std::this_thread::yield();
    other_done = put(1000);
  });
  auto r = crashkit::testing::run_with_crash("test.put.before", 500, [&] {
    go = true;
    return put(1000);
  });
  other.join();
  EXPECT_TRUE(std::holds_alternative<crashkit::testing::Fired>(r));
  EXPECT_EQ(other_done, 1000);
}

TEST(CrashPoint, RunWithCrashRejectsUnknownPoints) {
  EXPECT_THROW(crashkit::testing::run_with_crash("test.no.such.point", 1, [] { return 0; }),
               std::invalid_argument);
}

TEST(CrashPoint, FaultSitesReturnZeroWhenNotArmed) {
  EXPECT_EQ(write_or_errno(), 1);
}

TEST(CrashPoint, CountsCrossingsOnceTheSiteIsWatched) {
  (void)crashkit::testing::run_with_crash("test.put.before", 1000000, [] { return put(0); });
  auto before = crashkit::crash_point_crossings("test.put.before");
  put(25);
  EXPECT_EQ(crashkit::crash_point_crossings("test.put.before"), before + 25);
}

}  // namespace
