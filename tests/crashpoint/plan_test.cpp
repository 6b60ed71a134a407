// The CRASHKIT_PLAN grammar: valid plans, round trips, triggers, and every error.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstddef>
#include <string>

#include "crashkit/crash_plan.hpp"
#include "crashkit/crash_protocol.hpp"

namespace crashkit {
namespace {

std::vector<CrashRule> ok(std::string_view text) {
  auto r = parse_crash_plan(text);
  EXPECT_TRUE(std::holds_alternative<std::vector<CrashRule>>(r))
      << text << ": " << std::get<CrashPlanError>(r).message;
  return std::holds_alternative<std::vector<CrashRule>>(r) ? std::get<std::vector<CrashRule>>(r)
                                                           : std::vector<CrashRule>{};
}

std::string err(std::string_view text) {
  auto r = parse_crash_plan(text);
  EXPECT_TRUE(std::holds_alternative<CrashPlanError>(r)) << text;
  return std::holds_alternative<CrashPlanError>(r) ? std::get<CrashPlanError>(r).message : "";
}

TEST(CrashPlan, ParsesEveryTriggerAndAction) {
  auto rules =
      ok("wal.append.after_write@3=kill;wal.sync@2+=abort;wal.write@%4=error(ENOSPC);"
         "a@1=segv;b@1=throw;c@1=hang;d@1=pause;e@1=exit(3);f@1=delay(200ms);g@1=error(EIO)");
  ASSERT_EQ(rules.size(), 10u);
  EXPECT_EQ(rules[0].trigger, CrashRule::Trigger::at);
  EXPECT_EQ(rules[0].n, 3u);
  EXPECT_EQ(rules[1].trigger, CrashRule::Trigger::from);
  EXPECT_EQ(rules[2].trigger, CrashRule::Trigger::every);
  EXPECT_EQ(rules[2].code, ENOSPC);
  EXPECT_EQ(rules[7].action, CrashRule::Action::exit);
  EXPECT_EQ(rules[7].code, 3);
  EXPECT_EQ(rules[8].delay_ns, 200'000'000);
  EXPECT_EQ(rules[9].code, EIO);
}

TEST(CrashPlan, RoundTrips) {
  const std::string plan =
      "p.a@3=kill;p.b@2+=abort;p.c@%4=error(ENOSPC);p.d@1=exit(3);p.e@5=delay(200ms);p.f@1=throw";
  EXPECT_EQ(format_crash_plan(ok(plan)), plan);
}

TEST(CrashPlan, TriggersFireWhereTheySay) {
  auto at = ok("p@3=kill")[0];
  auto from = ok("p@3+=kill")[0];
  auto every = ok("p@%3=kill")[0];
  for (std::uint64_t i = 1; i <= 10; ++i) {
    EXPECT_EQ(at.fires_at(i), i == 3) << i;
    EXPECT_EQ(from.fires_at(i), i >= 3) << i;
    EXPECT_EQ(every.fires_at(i), i % 3 == 0) << i;
  }
}

TEST(CrashPlan, RejectsWithOneLineNamingTheRule) {
  EXPECT_NE(err("").find("empty"), std::string::npos);
  EXPECT_NE(err("p=kill").find("missing '@'"), std::string::npos);
  EXPECT_NE(err("p@0=kill").find(">= 1"), std::string::npos);
  EXPECT_NE(err("p@x=kill").find(">= 1"), std::string::npos);
  EXPECT_NE(err("p@1=explode").find("unknown action 'explode'"), std::string::npos);
  EXPECT_NE(err("p@1=exit").find("needs an argument"), std::string::npos);
  EXPECT_NE(err("p@1=kill(3)").find("takes no argument"), std::string::npos);
  EXPECT_NE(err("p@1=exit(300)").find("0-255"), std::string::npos);
  EXPECT_NE(err("p@1=error(EWHAT)").find("unknown errno name 'EWHAT'"), std::string::npos);
  EXPECT_NE(err("p@1=delay(3 parsecs)").find("bad delay"), std::string::npos);
  EXPECT_NE(err("p@1=kill;p@2=kill").find("named twice"), std::string::npos);
  EXPECT_NE(err("p q@1=kill").find("bad character"), std::string::npos);
  EXPECT_NE(err("p@1=exit(3").find("unclosed"), std::string::npos);
  std::string m = err("p@1=explode");
  EXPECT_NE(m.find("rule 'p@1=explode'"), std::string::npos);
  EXPECT_EQ(m.find('\n'), std::string::npos);
}

// Found by fuzz/fuzz_crash_plan: the rule was quoted raw, so a line break in CRASHKIT_PLAN
// split the one-line error in two.
TEST(CrashPlan, RejectionQuotesUnprintableBytesEscapedOnOneLine) {
  using namespace std::string_view_literals;
  std::string m = err("a@1=delay(\n50us)");
  EXPECT_EQ(m.find('\n'), std::string::npos) << m;
  EXPECT_NE(m.find("rule 'a@1=delay(\\x0a50us)'"), std::string::npos) << m;
  m = err("p@1=error(E\rIO\0)"sv);
  EXPECT_NE(m.find("unknown errno name 'E\\x0dIO\\x00'"), std::string::npos) << m;
  m = err("p@1=expl\node");
  EXPECT_NE(m.find("unknown action 'expl\\x0aode'"), std::string::npos) << m;
}

TEST(CrashPlan, RejectsADelayThatDoesNotFitInsteadOfWrappingIt) {
  EXPECT_NE(err("p@1=delay(18446744074s)").find("bad delay"), std::string::npos);
  EXPECT_NE(err("p@1=delay(9999999999s)").find("bad delay"), std::string::npos);
  EXPECT_EQ(ok("p@1=delay(9223372036s)")[0].delay_ns, 9223372036'000'000'000);
}

TEST(CrashPlan, ActionNamesAreTheGrammarsWords) {
  for (auto a : {CrashRule::Action::kill, CrashRule::Action::abort, CrashRule::Action::segv,
                 CrashRule::Action::throw_, CrashRule::Action::hang, CrashRule::Action::pause}) {
    auto rules = ok(std::string("p@1=") + action_name(a));
    ASSERT_EQ(rules.size(), 1u);
    EXPECT_EQ(rules[0].action, a);
  }
}

TEST(CrashProtocol, VariableOwnership) {
  EXPECT_TRUE(is_crash_point_variable("CRASHKIT_PLAN"));
  EXPECT_TRUE(is_crash_point_variable("CRASHKIT_COUNTERS"));
  EXPECT_FALSE(is_crash_point_variable("CRASHKIT_RUN_DIR"));
  for (auto k : {"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID"})
    EXPECT_TRUE(is_service_manager_variable(k)) << k;
  EXPECT_FALSE(is_service_manager_variable("HOME"));
}

TEST(CrashProtocol, UnixAddressesPathAndAbstract) {
  sockaddr_un sa;
  socklen_t len = 0;
  ASSERT_TRUE(unix_address("/run/n.sock", sa, len));
  EXPECT_STREQ(sa.sun_path, "/run/n.sock");
  EXPECT_EQ(len, offsetof(sockaddr_un, sun_path) + 12);
  ASSERT_TRUE(unix_address("@abs", sa, len));
  EXPECT_EQ(sa.sun_path[0], '\0');
  EXPECT_EQ(std::string(sa.sun_path + 1, 3), "abs");
  EXPECT_EQ(len, offsetof(sockaddr_un, sun_path) + 4);
  EXPECT_FALSE(unix_address("", sa, len));
  EXPECT_FALSE(unix_address(std::string(sizeof sa.sun_path, 'x'), sa, len));
}

TEST(CrashProtocol, ParseNumberTakesWholeInRangeNumbersOnly) {
  EXPECT_EQ(parse_number<int>("42"), 42);
  EXPECT_EQ(parse_number<int>(""), std::nullopt);
  EXPECT_EQ(parse_number<int>("4x"), std::nullopt);
  EXPECT_EQ(parse_number<int>(" 4"), std::nullopt);
  EXPECT_EQ(parse_number<int>("99999999999"), std::nullopt);
  EXPECT_EQ(parse_number<std::uint64_t>("-1"), std::nullopt);
}

TEST(CrashPlan, ErrnoNames) {
  EXPECT_EQ(errno_from_name("ENOSPC"), ENOSPC);
  EXPECT_EQ(errno_from_name("EIO"), EIO);
  EXPECT_EQ(errno_from_name("nope"), 0);
  EXPECT_STREQ(errno_name(ENOSPC), "ENOSPC");
}

}  // namespace
}  // namespace crashkit
