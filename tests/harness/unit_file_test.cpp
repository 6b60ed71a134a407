// Reading a systemd unit (--unit): the grammar crashkit reads, how settings map onto a CellSpec,
// flags that win, errors that name FILE:LINE, and the units Debian ships for the daemons the
// integration tests run.
#include "crashkit/harness/unit_file.hpp"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace crashkit {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// The units a test writes, in a directory removed when the test process exits.
struct UnitDir {
  fs::path path = fs::temp_directory_path() / ("ck-unit-" + std::to_string(getpid()));
  ~UnitDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

fs::path write_unit(const std::string& name, const std::string& text) {
  static UnitDir dir;
  fs::create_directories(dir.path);
  std::ofstream(dir.path / name) << text;
  return dir.path / name;
}

TEST(UnitFile, ReadsServiceSettingsWithSystemdsGrammar) {
  auto f = write_unit("db@main.service",
                      "[Unit]\n"
                      "Description=not read\n"
                      "User=not-this-one\n"
                      "[Service]\n"
                      "# a comment\n"
                      "; another\n"
                      "Type=notify\n"
                      "User=db-%i\n"
                      "KillSignal=SIGINT\n"
                      "SuccessExitStatus=75\n"
                      "SuccessExitStatus=SIGUSR1\n"
                      "TimeoutSec=5min 20s\n"
                      "TimeoutStopSec=0\n"
                      "Environment=A=1 \"B=two words\" 'C=%p'\n"
                      "Environment=D=%%\n"
                      "ExecStartPre=/bin/first\n"
                      "ExecStartPre=\n"
                      "ExecStartPre=-/bin/rm -f \\\n"
                      "# inside a continuation\n"
                      "   /run/%N.sock\n"
                      "ExecStartPre=+/bin/mkdir -p /run/x\n");
  auto u = read_unit_file(f);
  ASSERT_TRUE(u) << u.error().message;
  EXPECT_EQ(u->type, "notify");
  EXPECT_EQ(u->user, "db-main");
  EXPECT_EQ(u->environment, (std::vector<std::string>{"A=1", "B=two words", "C=db", "D=%"}));
  EXPECT_EQ(u->exec_start_pre,
            (std::vector<std::string>{"-/bin/rm -f /run/db@main.sock", "+/bin/mkdir -p /run/x"}));
  CellSpec s;
  auto notes = apply_unit(*u, {}, s);
  ASSERT_TRUE(notes) << notes.error().message;
  EXPECT_TRUE(notes->empty());
  EXPECT_EQ(s.clean_stop.signal, SIGINT);
  EXPECT_TRUE(s.clean_stop.clean(ExitStatus::exited(75)));
  EXPECT_TRUE(s.clean_stop.clean(ExitStatus::signaled(SIGUSR1)));
  EXPECT_EQ(s.ready_timeout, 320s);
  EXPECT_EQ(s.stop_timeout, kLongestTimeout);  // 0: no timeout, as systemd reads it
  EXPECT_EQ(s.user, "db-main");
  EXPECT_EQ(s.before_start,
            "{ /bin/rm -f /run/db@main.sock; } || true && { /bin/mkdir -p /run/x; }");
}

TEST(UnitFile, FlagsGivenWinAndEnvGivenWins) {
  auto f = write_unit("a.service",
                      "[Service]\nKillSignal=SIGINT\nUser=daemon\nTimeoutStartSec=1\n"
                      "Environment=DIR=/var/lib/a KEEP=1\nExecStartPre=/bin/true\n");
  auto u = read_unit_file(f);
  ASSERT_TRUE(u) << u.error().message;
  CellSpec s;
  s.extra_env = {"DIR={data_dir}"};
  GivenFlags given;
  given.stop_signal = given.user = given.before_start = true;
  ASSERT_TRUE(apply_unit(*u, given, s));
  EXPECT_EQ(s.clean_stop.signal, SIGTERM);
  EXPECT_FALSE(s.user);
  EXPECT_FALSE(s.before_start);
  EXPECT_EQ(s.ready_timeout, 1s);
  EXPECT_EQ(s.extra_env, (std::vector<std::string>{"DIR={data_dir}", "KEEP=1"}));
}

TEST(UnitFile, ErrorsNameTheLineAndTheFix) {
  struct Case {
    std::string text, expect;
  };
  for (const auto& c : std::vector<Case>{
           {"[Service]\nType=notify\nnonsense\n", ":3: not KEY=VALUE"},
           {"[Service]\nUser=%Z\n", ":2: User=: specifier %Z is not supported"},
           {"[Service]\nEnvironment=\"A=1\n", ":2: Environment=: unterminated quote"},
           {"[Service]\nEnvironment=NOEQUALS\n", "'NOEQUALS' is not KEY=VALUE"},
           {"[Service]\nNotifyAccess=none\n", "NotifyAccess=none: crashkit needs READY=1"},
           {"[Service]\nKillSignal=SIGNOPE\n", "KillSignal= 'SIGNOPE': not a signal"},
           {"[Service]\nTimeoutStartSec=5 parsecs\n",
            "TimeoutStartSec= '5 parsecs': not a "
            "systemd time span"},
           {"[Service]\nSuccessExitStatus=TEMPFAIL\n", "'TEMPFAIL': give exit codes"},
           {"[Service]\nExecStartPre=@/bin/x y\n", "the @ prefix"}}) {
    auto f = write_unit("bad.service", c.text);
    auto u = read_unit_file(f);
    std::string message;
    if (!u) {
      message = u.error().message;
    } else {
      CellSpec s;
      auto a = apply_unit(*u, {}, s);
      ASSERT_FALSE(a) << c.text;
      message = a.error().message;
    }
    EXPECT_NE(message.find(c.expect), std::string::npos) << c.text << "\n" << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }
  auto missing = read_unit_file("/nonexistent/x.service");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().kind, ErrorKind::usage);
}

TEST(UnitFile, TimeSpansAsSystemdReadsThem) {
  EXPECT_EQ(*parse_time_span("t", "90"), 90s);
  EXPECT_EQ(*parse_time_span("t", "5min 20s"), 320s);
  EXPECT_EQ(*parse_time_span("t", "1h"), 1h);
  EXPECT_EQ(*parse_time_span("t", "500ms"), 500ms);
  EXPECT_EQ(*parse_time_span("t", "2 weeks"), 336h);
  EXPECT_EQ(*parse_time_span("t", "5 weeks"), kLongestTimeout);      // capped, like every timeout
  EXPECT_EQ(*parse_time_span("t", "4294967295w"), kLongestTimeout);  // no overflow
  EXPECT_EQ(*parse_time_span("t", "0"), kLongestTimeout);
  EXPECT_EQ(*parse_time_span("t", "infinity"), kLongestTimeout);
  EXPECT_FALSE(parse_time_span("t", ""));
  EXPECT_FALSE(parse_time_span("t", "-5s"));
  EXPECT_FALSE(parse_time_span("t", "5x"));
}

// The units Debian 12 ships for the daemons of the integration tests (scripts/setup installs
// them), read as they are.
TEST(UnitFile, DebiansUnitsMapAsExpected) {
  const fs::path lib = "/lib/systemd/system";
  if (!fs::exists(lib / "redis-server.service") || !fs::exists(lib / "mariadb.service") ||
      !fs::exists(lib / "postgresql@.service") || !fs::exists(lib / "etcd.service"))
    GTEST_SKIP() << "the daemons' packages are not installed (scripts/setup)";
  auto apply = [](const fs::path& f, CellSpec& s) {
    auto u = read_unit_file(f);
    EXPECT_TRUE(u) << u.error().message;
    auto notes = apply_unit(*u, {}, s);
    EXPECT_TRUE(notes) << notes.error().message;
    std::string all;
    for (const auto& n : *notes) all += n + "\n";
    return all;
  };
  CellSpec redis;
  const std::string redis_notes = apply(lib / "redis-server.service", redis);
  // LimitNOFILE=65535, lowered (with a note) where crashkit may not raise its hard limit.
  ASSERT_EQ(redis.rlimits.size(), 1u);
  EXPECT_EQ(redis.rlimits[0].resource, RLIMIT_NOFILE);
  EXPECT_EQ(redis.rlimits[0].soft, redis.rlimits[0].hard);
  if (redis.rlimits[0].hard == 65535u)
    EXPECT_EQ(redis_notes, "");
  else
    EXPECT_EQ(redis_notes.find("LimitNOFILE=65535: lowered"), 0u) << redis_notes;
  EXPECT_EQ(redis.user, "redis");
  EXPECT_EQ(redis.stop_timeout, kLongestTimeout);  // TimeoutStopSec=0

  CellSpec maria;
  EXPECT_NE(apply(lib / "mariadb.service", maria).find("EnvironmentFile="), std::string::npos);
  EXPECT_EQ(maria.user, "mysql");
  EXPECT_EQ(maria.clean_stop.signal, SIGTERM);
  EXPECT_EQ(maria.ready_timeout, 900s);
  EXPECT_EQ(maria.stop_timeout, 900s);

  CellSpec pg;
  EXPECT_NE(apply(lib / "postgresql@.service", pg).find("Type=forking"), std::string::npos);
  EXPECT_EQ(pg.ready_timeout, kLongestTimeout);  // TimeoutStartSec=0
  EXPECT_EQ(pg.stop_timeout, 1h);

  CellSpec etcd;
  apply(lib / "etcd.service", etcd);
  EXPECT_EQ(etcd.user, "etcd");
  char host[256] = "";
  gethostname(host, sizeof host - 1);
  EXPECT_NE(
      std::find(etcd.extra_env.begin(), etcd.extra_env.end(), std::string("ETCD_NAME=") + host),
      etcd.extra_env.end());
  EXPECT_NE(std::find(etcd.extra_env.begin(), etcd.extra_env.end(),
                      "ETCD_DATA_DIR=/var/lib/etcd/default"),
            etcd.extra_env.end());
}

}  // namespace
}  // namespace crashkit
