// Pure value types: durations, exit statuses, outcomes, placeholders, notify parsing.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <limits>

#include "crashkit/harness/duration.hpp"
#include "crashkit/harness/exit_status.hpp"
#include "crashkit/harness/notify_message.hpp"
#include "crashkit/harness/notify_receiver.hpp"
#include "crashkit/harness/outcome.hpp"
#include "crashkit/harness/placeholders.hpp"

namespace crashkit {
namespace {

using namespace std::chrono_literals;

TEST(Duration, ParsesEveryUnit) {
  EXPECT_EQ(*parse_duration("t", "100ns"), 100ns);
  EXPECT_EQ(*parse_duration("t", "750us"), 750us);
  EXPECT_EQ(*parse_duration("t", "200ms"), 200ms);
  EXPECT_EQ(*parse_duration("t", "5s"), 5s);
  EXPECT_EQ(*parse_duration("t", "1.5s"), 1500ms);
  EXPECT_EQ(*parse_duration("t", "2m"), 120s);
  EXPECT_EQ(*parse_duration("t", "1h"), 3600s);
}

TEST(Duration, RejectsWithTheOptionName) {
  for (const char* bad : {"", "5", "s", "5x", "-1s", "1..2s", "ms5", "1e400s"}) {
    auto d = parse_duration("--ready-timeout", bad);
    ASSERT_FALSE(d) << bad;
    EXPECT_EQ(d.error().kind, ErrorKind::usage);
    EXPECT_NE(d.error().message.find("--ready-timeout"), std::string::npos);
  }
}

// What parse_duration accepts never overflows in nanoseconds: 10^18 ns is the most.
TEST(Duration, RefusesWhatOverflowsNanoseconds) {
  EXPECT_EQ(*parse_duration("t", "1000000000s"), 1'000'000'000s);
  for (const char* big : {"1000000001s", "9223372037s", "16666667m", "277778h",
                          "99999999999999999999999h", "18446744073709551616ns"}) {
    auto d = parse_duration("--stop-timeout", big);
    ASSERT_FALSE(d) << big;
    EXPECT_NE(d.error().message.find("too large"), std::string::npos) << d.error().message;
  }
}

// poll() takes int milliseconds: 4294968s once wrapped to 704 ms, and 25 to 49 days to a
// negative value, which is "wait forever".
TEST(Duration, PollTimeoutIsClampedAndRoundedUp) {
  EXPECT_EQ(poll_timeout_ms(-5s), 0);
  EXPECT_EQ(poll_timeout_ms(0ns), 0);
  EXPECT_EQ(poll_timeout_ms(1ns), 1);
  EXPECT_EQ(poll_timeout_ms(1500us), 2);
  EXPECT_EQ(poll_timeout_ms(200ms), 200);
  EXPECT_EQ(poll_timeout_ms(4294968s), std::numeric_limits<int>::max());
  EXPECT_EQ(poll_timeout_ms(std::chrono::hours(24 * 30)), std::numeric_limits<int>::max());
  EXPECT_EQ(poll_timeout_ms(Duration::max()), std::numeric_limits<int>::max());
  EXPECT_LT(kLongestTimeout, std::chrono::milliseconds(std::numeric_limits<int>::max()));
}

TEST(Duration, FormatsShortest) {
  EXPECT_EQ(format_duration(5s), "5s");
  EXPECT_EQ(format_duration(200ms), "200ms");
  EXPECT_EQ(format_duration(1250us), "1.25ms");
  EXPECT_EQ(format_duration(830ns), "830ns");
}

TEST(ExitStatus, FromWaitStatus) {
  EXPECT_TRUE(ExitStatus::from_wait_status(3 << 8).exited_with(3));
  EXPECT_TRUE(ExitStatus::from_wait_status(SIGKILL).killed_by(SIGKILL));
  auto core = ExitStatus::from_wait_status(SIGSEGV | 0x80);
  EXPECT_EQ(core.kind(), ExitStatus::Kind::core_dumped);
  EXPECT_EQ(core.describe(), "killed by SIGSEGV (core dumped)");
  EXPECT_EQ(ExitStatus::exited(0).describe(), "exited with code 0");
  EXPECT_EQ(ExitStatus::signaled(SIGKILL).describe(), "killed by SIGKILL");
  // A daemon's forked MAINPID is reaped by its own parent: gone, status unknown, and never
  // mistaken for a clean exit or a kill.
  auto gone = ExitStatus::unknown();
  EXPECT_EQ(gone.describe(), "ended (status not ours to collect)");
  EXPECT_FALSE(gone.success());
  EXPECT_FALSE(gone.killed_by(0));
  EXPECT_FALSE(gone.killed_by(SIGKILL));
}

TEST(Outcome, ExitCodesFollowDesign) {
  EXPECT_EQ(exit_code_for(Outcome::pass), 0);
  EXPECT_EQ(exit_code_for(Outcome::fault_not_reached), 0);
  EXPECT_EQ(exit_code_for(Outcome::violation), 1);
  EXPECT_EQ(exit_code_for(Outcome::not_ready), 1);
  EXPECT_EQ(exit_code_for(Outcome::unexpected_exit), 1);
  EXPECT_EQ(exit_code_for(Outcome::harness_error), 3);
  for (auto o : {Outcome::pass, Outcome::violation, Outcome::not_ready, Outcome::unexpected_exit,
                 Outcome::fault_not_reached, Outcome::harness_error})
    EXPECT_EQ(outcome_from_string(to_string(o)), o);
  EXPECT_FALSE(outcome_from_string("passed"));
}

TEST(Placeholders, ReplacesKnownNamesOnly) {
  Placeholders p{"/r", "/r/data", "/r/scratch", "/r/ledger", 4};
  EXPECT_EQ(p.apply("--dir {data_dir} --log {run_dir}/x.{cycle} {ledger} {scratch}"),
            "--dir /r/data --log /r/x.4 /r/ledger /r/scratch");
  EXPECT_EQ(p.apply("awk '{print $1}' ${HOME} {unknown}"), "awk '{print $1}' ${HOME} {unknown}");
  EXPECT_EQ(p.apply("{data_dir"), "{data_dir");
}

TEST(Placeholders, ChildEnvironmentDropsSupervisorVariables) {
  setenv("NOTIFY_SOCKET", "/run/systemd/notify", 1);
  setenv("WATCHDOG_USEC", "1000", 1);
  setenv("CRASHKIT_TEST_KEEP", "yes", 1);
  auto env = child_environment({"EXTRA=1", "CRASHKIT_TEST_KEEP=override"});
  auto has = [&](const std::string& kv) {
    return std::find(env.begin(), env.end(), kv) != env.end();
  };
  EXPECT_FALSE(has("NOTIFY_SOCKET=/run/systemd/notify"));
  EXPECT_FALSE(has("WATCHDOG_USEC=1000"));
  EXPECT_TRUE(has("EXTRA=1"));
  EXPECT_TRUE(has("CRASHKIT_TEST_KEEP=override"));
  EXPECT_FALSE(has("CRASHKIT_TEST_KEEP=yes"));
  unsetenv("NOTIFY_SOCKET");
  unsetenv("WATCHDOG_USEC");
  unsetenv("CRASHKIT_TEST_KEEP");
}

TEST(NotifyMessage, ParsesKeyValueLines) {
  auto m = parse_notify_datagram("READY=1\nSTATUS=serving a=b\nMAINPID=42\n");
  ASSERT_TRUE(m);
  EXPECT_TRUE(m->has("READY", "1"));
  EXPECT_EQ(m->get("STATUS"), "serving a=b");
  EXPECT_EQ(m->get("MAINPID"), "42");
  EXPECT_FALSE(m->get("STOPPING"));
  auto x = parse_notify_datagram("X_CRASHKIT_FIRED=wal.append@3");
  ASSERT_TRUE(x);
  EXPECT_EQ(x->get("X_CRASHKIT_FIRED"), "wal.append@3");
}

TEST(NotifyMessage, RejectsMalformed) {
  using namespace std::string_view_literals;
  for (auto bad : {"READY=1\0STATUS=x"sv, "no equals sign"sv, "=1"sv, "ready=1"sv, ""sv, "\n\n"sv,
                   "READY-X=1"sv}) {
    EXPECT_FALSE(parse_notify_datagram(bad)) << bad;
  }
  EXPECT_FALSE(parse_notify_datagram(std::string(kNotifyDatagramMax + 1, 'A')));
  std::string max = "STATUS=" + std::string(kNotifyDatagramMax - 7, 'a');
  EXPECT_TRUE(parse_notify_datagram(max));
}

// Found by fuzz/fuzz_notify_datagram: the sender's text was quoted with fmt's "{:.40}", which
// counts UTF-8 code points, so a key of 4 KiB of continuation bytes was quoted whole, and a
// control character went into the message as is.
TEST(NotifyMessage, RejectionQuotesAtMost40BytesEscaped) {
  auto flood = parse_notify_datagram(std::string(4000, '\x9d') + "=1");
  ASSERT_FALSE(flood);
  EXPECT_LT(flood.error().message.size(), 200u) << flood.error().message;
  EXPECT_NE(flood.error().message.find("'\\x9d\\x9d"), std::string::npos);
  EXPECT_NE(flood.error().message.find("...'"), std::string::npos);
  auto escape = parse_notify_datagram("READY=1\nno key \x1b[2J");
  ASSERT_FALSE(escape);
  EXPECT_NE(escape.error().message.find("'no key \\x1b[2J'"), std::string::npos)
      << escape.error().message;
}

NotifyState folded(std::string_view datagram) {
  auto m = parse_notify_datagram(datagram);
  EXPECT_TRUE(m) << datagram;
  NotifyState state;
  if (m) apply_notify_message(*m, state);
  return state;
}

TEST(NotifyState, FoldsExtendTimeout) {
  auto before = Clock::now();
  auto s = folded("EXTEND_TIMEOUT_USEC=5000000");
  EXPECT_EQ(s.extend_timeout, 5s);
  ASSERT_TRUE(s.extended_until);
  EXPECT_GE(*s.extended_until, before + 5s);
  EXPECT_LE(*s.extended_until, Clock::now() + 5s);
  for (const char* ignored :
       {"EXTEND_TIMEOUT_USEC=-1", "EXTEND_TIMEOUT_USEC=5s",
        // 0 and 2^64-1 (USEC_INFINITY) are ignored, as systemd ignores them
        "EXTEND_TIMEOUT_USEC=0", "EXTEND_TIMEOUT_USEC=18446744073709551615"}) {
    EXPECT_FALSE(folded(ignored).extend_timeout) << ignored;
    EXPECT_FALSE(folded(ignored).extended_until) << ignored;
  }
}

// Found by fuzz/fuzz_notify_datagram: microseconds past 2^63 / 1000 overflowed (undefined
// behaviour) on the way to nanoseconds. A deadline past what the clock holds is no deadline
// (systemd's usec_add() saturates at infinity), never a wrapped one.
TEST(NotifyState, ExtendTimeoutSaturatesInsteadOfOverflowing) {
  const Duration most = std::chrono::microseconds(1'000'000'000'000'000);
  for (const char* huge :
       {"EXTEND_TIMEOUT_USEC=272387011474469044", "EXTEND_TIMEOUT_USEC=9300000000000000",
        "EXTEND_TIMEOUT_USEC=18446744073709551614"}) {
    auto s = folded(huge);
    EXPECT_EQ(s.extend_timeout, most) << huge;
    EXPECT_EQ(s.extended_until, Clock::time_point::max()) << huge;
  }
  EXPECT_EQ(folded("EXTEND_TIMEOUT_USEC=1000000000000000").extend_timeout, most);
  EXPECT_EQ(folded("EXTEND_TIMEOUT_USEC=999999999999999").extend_timeout, most - 1us);
  EXPECT_LT(folded("EXTEND_TIMEOUT_USEC=1000000000000000").extended_until,
            Clock::time_point::max());
}

// Each message extends anew from its arrival (a daemon repeats it while a long start goes on),
// and never moves the deadline earlier, as systemd's service_extend_timeout().
TEST(NotifyState, EveryExtensionCountsAndNoneShortens) {
  auto m = parse_notify_datagram("EXTEND_TIMEOUT_USEC=60000000");
  auto shorter = parse_notify_datagram("EXTEND_TIMEOUT_USEC=1000000");
  ASSERT_TRUE(m && shorter);
  NotifyState s;
  apply_notify_message(*m, s);
  const auto first = *s.extended_until;
  for (auto t = Clock::now(); Clock::now() == t;) {
  }  // the clock ticks: the same value again lands later
  apply_notify_message(*m, s);
  EXPECT_GT(*s.extended_until, first);
  const auto second = *s.extended_until;
  apply_notify_message(*shorter, s);
  EXPECT_EQ(*s.extended_until, second);
  EXPECT_EQ(s.extend_timeout, 1s);
}

}  // namespace
}  // namespace crashkit
