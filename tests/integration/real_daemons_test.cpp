// Kill-and-verify against real third-party daemons that speak sd_notify: Debian's redis-server
// and PostgreSQL 15. Each has a control that must fail, so the check is shown able to fail.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "../support/cli_runner.hpp"
#include "../support/process_checks.hpp"
#include "../support/redis.hpp"

namespace crashkit {
namespace {

namespace fs = std::filesystem;
const std::string kCli = CRASHKIT_CLI;
const char* kPostgres = "/usr/lib/postgresql/15/bin/postgres";
const char* kInitdb = "/usr/lib/postgresql/15/bin/initdb";

bool installed(const char* path) {
  return access(path, X_OK) == 0;
}

std::vector<std::string> redis_run(const std::string& fault, const std::string& persistence) {
  const std::string cli = "redis-cli -s {run_dir}/r.sock";
  std::vector<std::string> argv{
      kCli,
      "run",
      "--fault",
      fault,
      "--cycles",
      "3",
      "--workload",
      "for i in $(seq 1 100); do " + cli + " set k$i v$i-{cycle} >/dev/null || exit 1; done",
      "--check",
      "test \"$(" + cli + " dbsize)\" -eq 100",
      "--check",
      "test \"$(" + cli + " get k100)\" = v100-{cycle}",
      "--"};
  for (auto& a : test::redis_server_argv()) argv.push_back(a);
  for (auto& a : {std::string("--appendonly"), persistence}) argv.push_back(a);
  if (persistence == "yes") {
    argv.push_back("--appendfsync");
    argv.push_back("always");
  }
  return argv;
}

TEST(RealDaemons, RedisKeepsAcknowledgedKeysAcrossSigkill) {
  if (!installed("/usr/bin/redis-server"))
    GTEST_SKIP() << "redis-server not installed (scripts/setup installs it)";
  auto r = test::run_cli(redis_run("sigkill", "yes"));
  EXPECT_EQ(r.code(), 0) << r.output;
  EXPECT_NE(r.output.find("pass: 3 cycle(s) of sigkill"), std::string::npos) << r.output;
  EXPECT_TRUE(test::no_children_left());
}

TEST(RealDaemons, RedisWithoutPersistenceIsCaughtLosingKeys) {
  if (!installed("/usr/bin/redis-server")) GTEST_SKIP() << "redis-server not installed";
  auto r = test::run_cli(redis_run("sigkill", "no"));
  EXPECT_EQ(r.code(), 1) << r.output;
  EXPECT_NE(r.output.find("violation: cycle 0: online check"), std::string::npos) << r.output;
}

TEST(RealDaemons, RedisStopsCleanlyOnSigterm) {
  if (!installed("/usr/bin/redis-server")) GTEST_SKIP() << "redis-server not installed";
  auto r = test::run_cli(redis_run("sigterm", "yes"));
  EXPECT_EQ(r.code(), 0) << r.output;
}

// --ready-when, for daemons that do not speak sd_notify: redis-server without --supervised is
// ready when its socket accepts, or when its client says PONG; over TCP too, on a free port.
TEST(RealDaemons, RedisWithoutSdNotifyIsReadyWhenItAccepts) {
  if (!installed("/usr/bin/redis-server")) GTEST_SKIP() << "redis-server not installed";
  const std::string cli = "redis-cli -s {run_dir}/r.sock";
  for (const std::string& when :
       std::vector<std::string>{"unix:{run_dir}/r.sock", "cmd:" + cli + " ping | grep -q PONG"}) {
    auto r = test::run_cli(
        {kCli, "run", "--fault", "sigkill", "--cycles", "2", "--ready-when", when, "--workload",
         cli + " set k v-{cycle} >/dev/null", "--check",
         // redis accepts on its socket before it has loaded its AOF and
         // answers -LOADING meanwhile (why unix: is the weaker probe): the
         // check, like any client, waits that out, at most 5 s.
         "for i in $(seq 100); do v=$(" + cli +
             " get k); case $v in *LOADING*) sleep 0.05;; *) break;; esac; "
             "done; test \"$v\" = v-{cycle} || { echo \"get k: $v\" >&2; exit 1; }",
         "--", "redis-server", "--port", "0", "--unixsocket", "{run_dir}/r.sock", "--dir",
         "{data_dir}", "--save", "", "--appendonly", "yes", "--appendfsync", "always"});
    EXPECT_EQ(r.code(), 0) << when << "\n" << r.output;
    EXPECT_NE(r.output.find("pass: 2 cycle(s) of sigkill"), std::string::npos) << r.output;
  }
  const int port = test::free_tcp_port();
  auto tcp = test::run_cli({kCli, "run", "--ready-when", "tcp:127.0.0.1:" + std::to_string(port),
                            "--", "redis-server", "--port", std::to_string(port), "--bind",
                            "127.0.0.1", "--save", "", "--dir", "{data_dir}"});
  EXPECT_EQ(tcp.code(), 0) << tcp.output;
  EXPECT_TRUE(test::no_children_left());
}

// --unit: the daemon's own unit from Debian supplies the user, the stop signal, the timeouts
// and the environment; the command line stays ours. redis-server.service says User=redis, etcd's
// User=etcd and Environment=ETCD_DATA_DIR=/var/lib/etcd/default, which --env moves into the run.
TEST(RealDaemons, UnderTheirOwnUnitFiles) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root: the units name their users";
  const fs::path lib = "/lib/systemd/system";
  if (!installed("/usr/bin/redis-server") || !fs::exists(lib / "redis-server.service") ||
      !installed("/usr/bin/etcd") || !fs::exists(lib / "etcd.service"))
    GTEST_SKIP() << "redis-server and etcd-server not installed (scripts/setup)";
  const std::string run_dir = "/tmp/ck-units-" + std::to_string(getpid());
  const std::string redis_cli = "redis-cli -s {run_dir}/r.sock";
  auto redis = test::run_cli(
      {kCli,           "run",
       "--unit",       (lib / "redis-server.service").string(),
       "--run-dir",    run_dir + "/redis",
       "--fault",      "sigterm",
       "--workload",   redis_cli + " set k v >/dev/null",
       "--check",      "test \"$(id -un) $(" + redis_cli + " get k)\" = \"redis v\" || exit 1",
       "--",           "redis-server",
       "--supervised", "systemd",
       "--port",       "0",
       "--unixsocket", "{run_dir}/r.sock",
       "--dir",        "{data_dir}",
       "--save",       "",
       "--appendonly", "yes"},
      std::chrono::minutes(3));
  EXPECT_EQ(redis.code(), 0) << redis.output;
  const std::string ctl = "ETCDCTL_API=3 etcdctl --endpoints unix://c:1";
  auto etcd = test::run_cli(
      {kCli,
       "run",
       "--unit",
       (lib / "etcd.service").string(),
       "--env",
       "ETCD_DATA_DIR={data_dir}",
       "--env",
       "ETCD_NAME=n",
       "--run-dir",
       run_dir + "/etcd",
       "--fault",
       "sigterm",
       "--before-start",
       "rm -f c:1 p:2",
       "--ready-timeout",
       "60s",
       "--workload",
       ctl + " put k v >/dev/null",
       "--check",
       "test \"$(id -un) $(" + ctl + " get --print-value-only k)\" = \"etcd v\" || exit 1",
       "--",
       "etcd",
       "--listen-client-urls",
       "unix://c:1",
       "--advertise-client-urls",
       "unix://c:1",
       "--listen-peer-urls",
       "unix://p:2",
       "--initial-advertise-peer-urls",
       "unix://p:2",
       "--initial-cluster",
       "n=unix://p:2"},
      std::chrono::minutes(3));
  EXPECT_EQ(etcd.code(), 0) << etcd.output;
  EXPECT_NE(etcd.output.find("EnvironmentFile=-/etc/default/etcd is not read"), std::string::npos)
      << etcd.output;
  EXPECT_TRUE(test::no_children_left());
  fs::remove_all(run_dir);
}

std::vector<std::string> postgres_run(const std::string& commit_mode) {
  const std::string psql = "psql -X -q -h {run_dir} -U postgres -d postgres -v ON_ERROR_STOP=1";
  // Under /tmp: the build tree may sit below a directory the postgres user cannot enter.
  return {kCli,
          "run",
          "--user",
          "postgres",
          "--run-dir",
          "/tmp/crashkit-pg-test-" + std::to_string(getpid()),
          "--fault",
          "sigkill",
          "--cycles",
          "2",
          "--ready-timeout",
          "60s",
          "--prepare",
          std::string(kInitdb) + " -D {data_dir} -A trust -U postgres >/dev/null",
          "--workload",
          psql + " -c 'create table if not exists t(i int)' -c " + commit_mode +
              " -c 'insert into t values ({cycle})'",
          "--check",
          "test \"$(" + psql + " -tAc 'select count(*) from t')\" -eq $(({cycle} + 1))",
          "--",
          kPostgres,
          "-D",
          "{data_dir}",
          "-k",
          "{run_dir}",
          "-c",
          "listen_addresses=",
          "-c",
          "fsync=on"};
}

TEST(RealDaemons, PostgresKeepsCommittedRowAcrossSigkill) {
  if (!installed(kPostgres))
    GTEST_SKIP() << "postgresql-15 not installed (scripts/setup installs it)";
  if (geteuid() != 0) GTEST_SKIP() << "needs root to run postgres as --user postgres";
  auto r = test::run_cli(postgres_run("'set synchronous_commit = on'"), std::chrono::minutes(3));
  EXPECT_EQ(r.code(), 0) << r.output;
  EXPECT_NE(r.output.find("pass: 2 cycle(s) of sigkill"), std::string::npos) << r.output;
  EXPECT_TRUE(test::no_children_left());
  fs::remove_all("/tmp/crashkit-pg-test-" + std::to_string(getpid()));
}

TEST(RealDaemons, UserWhoCannotReachTheRunDirIsAUsageError) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root for --user";
  auto parent = fs::temp_directory_path() / ("ck-private-" + std::to_string(getpid()));
  fs::create_directories(parent);
  fs::permissions(parent, fs::perms::owner_all);
  auto r = test::run_cli(
      {kCli, "run", "--user", "nobody", "--run-dir", (parent / "run").string(), "--", "/bin/true"});
  EXPECT_EQ(r.code(), 2) << r.output;
  EXPECT_NE(r.output.find("user nobody cannot reach it"), std::string::npos) << r.output;
  fs::remove_all(parent);
}

TEST(RealDaemons, PostgresRefusesRootWithoutUser) {
  if (!installed(kPostgres)) GTEST_SKIP() << "postgresql-15 not installed";
  if (geteuid() != 0) GTEST_SKIP() << "only root is refused";
  auto r = test::run_cli({kCli, "run", "--", kPostgres, "-D", "{data_dir}"});
  EXPECT_EQ(r.code(), 1) << r.output;
  EXPECT_NE(r.output.find("exited before READY"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("properly start the server"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace crashkit
