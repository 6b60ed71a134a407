// `crashkit workload` and `crashkit verify`, the acknowledged-write oracle as tools: first against
// a store of files (every verdict two-sided: the state that holds passes, each kind of loss is
// named), then against real daemons through their own clients only, with no per-daemon script:
// a durable configuration passes SIGKILL cycles, a lossy one of the same daemon is caught.
#include <gtest/gtest.h>
#include <pwd.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "../support/cli_runner.hpp"
#include "../support/process_checks.hpp"
#include "../support/redis.hpp"
#include "../support/shared_bin.hpp"

namespace crashkit {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
const std::string kCli = CRASHKIT_CLI;

class LedgerTools : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("ck-ledger-" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "store");
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string put() const { return "printf %s {value} > " + (dir_ / "store").string() + "/{key}"; }
  std::string get() const { return "cat " + (dir_ / "store").string() + "/{key} 2>/dev/null || :"; }
  test::CliRun workload(std::vector<std::string> extra) {
    std::vector<std::string> argv{kCli, "workload", "--ledger", ledger(), "--put", put()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return test::run_cli(argv);
  }
  test::CliRun verify() {
    return test::run_cli({kCli, "verify", "--ledger", ledger(), "--get", get()});
  }
  std::string ledger() const { return (dir_ / "ledger").string(); }
  fs::path stored(const std::string& key) const { return dir_ / "store" / key; }
  void store(const std::string& key, const std::string& value) {
    std::ofstream(stored(key)) << value;
  }
  std::string read(const std::string& key) const {
    std::ifstream in(stored(key));
    std::string v;
    in >> v;
    return v;
  }
  std::vector<std::string> ledger_lines() const {
    std::ifstream in(ledger());
    std::vector<std::string> out;
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
  }

  fs::path dir_;
};

TEST_F(LedgerTools, ConcurrentClientsRecordEveryPutPendingThenAcked) {
  auto w = workload({"--count", "25", "--concurrency", "4"});
  ASSERT_EQ(w.code(), 0) << w.output;
  EXPECT_NE(w.output.find("100 put(s) acked"), std::string::npos) << w.output;
  auto lines = ledger_lines();
  ASSERT_EQ(lines.size(), 200u);
  int pending = 0, acked = 0;
  for (const auto& l : lines) {
    std::istringstream ls(l);
    std::string state, op, key, value, extra;
    ASSERT_TRUE(ls >> state >> op >> key >> value) << "torn line: " << l;
    EXPECT_FALSE(ls >> extra) << "interleaved line: " << l;
    EXPECT_EQ(op, "PUT");
    (state == "pending" ? pending : acked)++;
  }
  EXPECT_EQ(pending, 100);
  EXPECT_EQ(acked, 100);
  auto v = verify();
  EXPECT_EQ(v.code(), 0) << v.output;
  EXPECT_NE(v.output.find("held: 100 acked key(s)"), std::string::npos) << v.output;
}

TEST_F(LedgerTools, EachKindOfLossIsNamed) {
  ASSERT_EQ(workload({"--count", "6", "--keys", "3"}).code(), 0);  // c0_k0..k2, twice each
  ASSERT_EQ(verify().code(), 0);
  const std::string older =
      ledger_lines()[1].substr(ledger_lines()[1].rfind(' ') + 1);  // c0_k0's first
  fs::remove(stored("c0_k1"));
  store("c0_k0", older);
  store("c0_k2", "never-written");
  auto v = verify();
  EXPECT_EQ(v.code(), 1) << v.output;
  EXPECT_NE(v.output.find("lost 1 of 3 acked (c0_k1)"), std::string::npos) << v.output;
  EXPECT_NE(v.output.find("1 acked key(s) hold an older value (c0_k0)"), std::string::npos)
      << v.output;
  EXPECT_NE(v.output.find("1 key(s) hold a value never written (c0_k2)"), std::string::npos)
      << v.output;
  EXPECT_NE(v.output.find("c0_k2: expected"), std::string::npos) << v.output;
  // The summary is the last line: what `crashkit run` quotes of a failed check.
  EXPECT_EQ(v.output.rfind("lost 1 of 3"), v.output.rfind('\n', v.output.size() - 2) + 1)
      << v.output;
}

// A put in flight when the daemon died stays pending: absent or present, both hold.
TEST_F(LedgerTools, APendingPutMayOrMayNotHaveLanded) {
  std::ofstream(ledger())
      << "pending PUT a v1\nacked PUT a v1\npending PUT a v2\npending PUT b w1\n";
  store("a", "v1");
  EXPECT_EQ(verify().code(), 0);
  store("a", "v2");
  store("b", "w1");
  EXPECT_EQ(verify().code(), 0);
  fs::remove(stored("b"));
  EXPECT_EQ(verify().code(), 0);
  fs::remove(stored("a"));
  auto lost = verify();
  EXPECT_EQ(lost.code(), 1) << lost.output;
  EXPECT_NE(lost.output.find("lost 1 of 1 acked (a)"), std::string::npos) << lost.output;
}

// A put that timed out may commit after a later acknowledged put of its key (etcd keeps a
// proposal through a partition): with --pending-may-land-late its value holds; by default it
// is a lost update, as after a crash, where the pending put is ordered before what follows it.
TEST_F(LedgerTools, APendingPutMayLandLateWhenAskedAndOnlyThen) {
  std::ofstream(ledger()) << "pending PUT a v1\npending PUT a v2\nacked PUT a v2\n"
                             "pending PUT b w1\nacked PUT b w1\npending PUT b w2\nacked PUT b w2\n";
  store("a", "v1");  // the timed-out v1 landed after v2
  store("b", "w2");
  auto strict = verify();
  EXPECT_EQ(strict.code(), 1) << strict.output;
  EXPECT_NE(strict.output.find("1 acked key(s) hold an older value (a)"), std::string::npos)
      << strict.output;
  auto late = test::run_cli(
      {kCli, "verify", "--ledger", ledger(), "--get", get(), "--pending-may-land-late"});
  EXPECT_EQ(late.code(), 0) << late.output;
  // An acknowledged older value is still a lost update, late or not: w1 was acked, then w2.
  store("b", "w1");
  late = test::run_cli(
      {kCli, "verify", "--ledger", ledger(), "--get", get(), "--pending-may-land-late"});
  EXPECT_EQ(late.code(), 1) << late.output;
  EXPECT_NE(late.output.find("1 acked key(s) hold an older value (b)"), std::string::npos)
      << late.output;
}

TEST_F(LedgerTools, DumpReadsEveryKeyInOneCall) {
  ASSERT_EQ(workload({"--count", "5"}).code(), 0);
  const std::string dump = "cd " + (dir_ / "store").string() +
                           " && for k in *; do echo \"$k $(cat $k)\"; done; echo other-key x";
  auto v = test::run_cli({kCli, "verify", "--ledger", ledger(), "--dump", dump});
  EXPECT_EQ(v.code(), 0) << v.output;
  fs::remove(stored("c0_5"));
  v = test::run_cli({kCli, "verify", "--ledger", ledger(), "--dump", dump});
  EXPECT_EQ(v.code(), 1) << v.output;
  EXPECT_NE(v.output.find("lost 1 of 5 acked (c0_5)"), std::string::npos) << v.output;
}

// The daemon dies mid-run: the failed put stays pending, the workload stops and says so.
TEST_F(LedgerTools, AFailedPutStopsTheWorkloadAndStaysPending) {
  const std::string put_until_3 =
      "test {key} != c0_3 || { echo connection refused >&2; exit 1; }; " + put();
  auto w = test::run_cli(
      {kCli, "workload", "--ledger", ledger(), "--count", "10", "--put", put_until_3});
  EXPECT_EQ(w.code(), 1) << w.output;
  EXPECT_NE(w.output.find("put of c0_3 exited with code 1: connection refused; stopped after 2"),
            std::string::npos)
      << w.output;
  auto lines = ledger_lines();
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_EQ(lines.back().rfind("pending PUT c0_3 ", 0), 0u) << lines.back();
  EXPECT_EQ(verify().code(), 0);
}

// Not being able to judge is never a loss: exit 3 (harness_error under `crashkit run`).
TEST_F(LedgerTools, WhatCannotBeJudgedExitsThree) {
  ASSERT_EQ(workload({"--count", "2"}).code(), 0);
  auto missing_client =
      test::run_cli({kCli, "verify", "--ledger", ledger(), "--get", "no-such-client-xyz {key}"});
  EXPECT_EQ(missing_client.code(), 3) << missing_client.output;
  EXPECT_NE(missing_client.output.find("exited with code 127"), std::string::npos)
      << missing_client.output;
  auto no_ledger =
      test::run_cli({kCli, "verify", "--ledger", (dir_ / "nope").string(), "--get", get()});
  EXPECT_EQ(no_ledger.code(), 3) << no_ledger.output;
  std::ofstream(ledger(), std::ios::app) << "garbage\n";
  auto torn = verify();
  EXPECT_EQ(torn.code(), 3) << torn.output;
  EXPECT_NE(torn.output.find(":5: not 'pending|acked OP KEY VALUE'"), std::string::npos)
      << torn.output;
  // Usage: exactly one way to read; a put that stores nothing.
  EXPECT_EQ(test::run_cli({kCli, "verify", "--ledger", ledger()}).code(), 2);
  EXPECT_EQ(test::run_cli({kCli, "workload", "--ledger", ledger(), "--put", "true {key}"}).code(),
            2);
  EXPECT_EQ(test::run_cli({kCli, "workload", "--ledger", ledger(), "--put", put(), "--count", "0"})
                .code(),
            2);
}

// ---------------------------------------------------------------------------------------------
// Real daemons, through their own clients and the two tools only.

bool installed(const char* path) {
  return access(path, X_OK) == 0;
}

std::vector<std::string> redis_cell(const std::string& persistence_flags) {
  const std::string cli = "redis-cli -s {run_dir}/r.sock";
  std::vector<std::string> argv{
      kCli,
      "run",
      "--fault",
      "sigkill",
      "--cycles",
      "2",
      "--workload",
      kCli + " workload --ledger {ledger} --count 50 --keys 20 --concurrency 4 --put '" + cli +
          " set {key} {value}'",
      "--check",
      kCli + " verify --ledger {ledger} --get '" + cli + " get {key}'",
      "--"};
  for (auto& a : test::redis_server_argv()) argv.push_back(a);
  std::istringstream flags(persistence_flags);
  for (std::string f; flags >> f;) argv.push_back(f);
  return argv;
}

TEST(LedgerDaemons, RedisWithAppendfsyncAlwaysPasses) {
  if (!installed(test::kRedisServer) || !installed("/usr/bin/redis-cli"))
    GTEST_SKIP() << "redis-server/redis-tools not installed (scripts/setup)";
  auto r = test::run_cli(redis_cell("--appendonly yes --appendfsync always"), 3min);
  EXPECT_EQ(r.code(), 0) << r.output;
  EXPECT_NE(r.output.find("pass: 2 cycle(s) of sigkill"), std::string::npos) << r.output;
  EXPECT_TRUE(test::no_children_left());
}

TEST(LedgerDaemons, RedisWithoutPersistenceIsCaught) {
  if (!installed(test::kRedisServer) || !installed("/usr/bin/redis-cli"))
    GTEST_SKIP() << "redis-server/redis-tools not installed (scripts/setup)";
  auto r = test::run_cli(redis_cell("--appendonly no"), 3min);
  EXPECT_EQ(r.code(), 1) << r.output;
  EXPECT_NE(r.output.find("violation: cycle 0: online check"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("lost 80 of 80 acked (c"), std::string::npos) << r.output;
  EXPECT_TRUE(test::no_children_left());
}

// `crashkit run` with two SIGKILL cycles in `run_dir`, then `rest`.
std::vector<std::string> with_prefix(const std::string& run_dir, std::vector<std::string> rest) {
  std::vector<std::string> argv{kCli,      "run",      "--run-dir", run_dir,           "--fault",
                                "sigkill", "--cycles", "2",         "--ready-timeout", "60s"};
  argv.insert(argv.end(), rest.begin(), rest.end());
  return argv;
}

// PostgreSQL 15 through psql. synchronous_commit=off acknowledges a commit before its WAL is
// written; the WAL writer writes the last partial page only every wal_writer_delay (10 s here),
// so a SIGKILL soon after the last commits loses them, as PostgreSQL's documentation of
// asynchronous commit warns (recent transactions may be lost in a crash). The durable default
// passes.
std::vector<std::string> postgres_cell(const std::string& run_dir, const std::string& commit) {
  const std::string psql = "psql -X -q -h {run_dir} -U postgres -d postgres -v ON_ERROR_STOP=1";
  // The workload and the check run as postgres, which may not reach the build tree.
  const std::string ck = test::shared_copy(kCli);
  return with_prefix(
      run_dir,
      {"--user",
       "postgres",
       "--prepare",
       "/usr/lib/postgresql/15/bin/initdb -D {data_dir} -A trust -U postgres >/dev/null",
       "--workload",
       psql + " -c 'create table if not exists kv(k text primary key, v text)' && " + ck +
           " workload --ledger {ledger} --count 40 --concurrency 2 --put \"" + psql +
           " -c \\\"insert into kv values ('{key}', '{value}') on conflict (k) do update set v = "
           "excluded.v\\\"\"",
       "--check",
       ck + " verify --ledger {ledger} --dump \"" + psql + " -tA -F ' ' -c 'select k, v from kv'\"",
       "--",
       "/usr/lib/postgresql/15/bin/postgres",
       "-D",
       "{data_dir}",
       "-k",
       "{run_dir}",
       "-c",
       "listen_addresses=",
       "-c",
       "synchronous_commit=" + commit,
       "-c",
       "wal_writer_delay=10000"});
}

std::string postgres_skip_reason() {
  if (!installed("/usr/lib/postgresql/15/bin/postgres"))
    return "postgresql-15 not installed (scripts/setup)";
  if (geteuid() != 0) return "needs root to run postgres as the postgres user";
  if (getpwnam("postgres") == nullptr) return "no postgres user";
  return {};
}

TEST(LedgerDaemons, PostgresWithSynchronousCommitPasses) {
  if (auto why = postgres_skip_reason(); !why.empty()) GTEST_SKIP() << why;
  // Under /tmp: the build tree may sit below a directory the postgres user cannot enter.
  const std::string run_dir = "/tmp/ck-ledger-pg-on-" + std::to_string(getpid());
  auto r = test::run_cli(postgres_cell(run_dir, "on"), 3min);
  EXPECT_EQ(r.code(), 0) << r.output;
  EXPECT_NE(r.output.find("pass: 2 cycle(s) of sigkill"), std::string::npos) << r.output;
  EXPECT_TRUE(test::no_children_left());
  fs::remove_all(run_dir);
}

TEST(LedgerDaemons, PostgresWithAsynchronousCommitIsCaught) {
  if (auto why = postgres_skip_reason(); !why.empty()) GTEST_SKIP() << why;
  const std::string run_dir = "/tmp/ck-ledger-pg-off-" + std::to_string(getpid());
  auto r = test::run_cli(postgres_cell(run_dir, "off"), 3min);
  EXPECT_EQ(r.code(), 1) << r.output;
  EXPECT_NE(r.output.find("violation: cycle 0: online check"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(" acked (c"), std::string::npos) << r.output;
  EXPECT_TRUE(test::no_children_left());
  fs::remove_all(run_dir);
}

// MariaDB 10.11 through the mariadb client. innodb_flush_log_at_trx_commit=0 acknowledges a
// commit with its redo log still in the server's memory, written once per
// innodb_flush_log_at_timeout (set to its maximum here); the server's
// documentation warns that a crash loses the transactions not yet flushed in that mode. =1, the
// default, passes. (=2 survives a process crash; power loss catches it, in
// powerloss_daemons_test.cpp.)
std::vector<std::string> mariadb_cell(const std::string& run_dir, const std::string& flush) {
  const std::string m = "mariadb --no-defaults -u root -S {run_dir}/m.sock";
  return with_prefix(
      run_dir,
      {"--prepare",
       "mariadb-install-db --no-defaults --datadir={data_dir} --user=root "
       "--auth-root-authentication-method=socket --skip-test-db --innodb-use-native-aio=0 "
       "--tmpdir={run_dir} >/dev/null",
       "--workload",
       m +
           " -e 'create database if not exists w; create table if not exists w.kv (k "
           "varchar(64) primary key, v varchar(64)) engine=innodb' && " +
           kCli + " workload --ledger {ledger} --count 40 --concurrency 2 --put \"" + m +
           " -e \\\"replace into w.kv values ('{key}', '{value}')\\\"\"",
       "--check",
       kCli + " verify --ledger {ledger} --dump \"" + m + " -N -B -e 'select k, v from w.kv'\"",
       "--", "/usr/sbin/mariadbd", "--no-defaults", "--datadir={data_dir}",
       "--socket={run_dir}/m.sock", "--skip-networking", "--user=root", "--innodb-use-native-aio=0",
       "--tmpdir={run_dir}", "--innodb-flush-log-at-trx-commit=" + flush,
       "--innodb-flush-log-at-timeout=2700"});
}

std::string mariadb_skip_reason() {
  if (!installed("/usr/sbin/mariadbd") || !installed("/usr/bin/mariadb-install-db") ||
      !installed("/usr/bin/mariadb"))
    return "mariadb-server/mariadb-client not installed (scripts/setup)";
  if (geteuid() != 0) return "needs root (mariadbd --user=root)";
  return {};
}

TEST(LedgerDaemons, MariadbWithFlushAtEveryCommitPasses) {
  if (auto why = mariadb_skip_reason(); !why.empty()) GTEST_SKIP() << why;
  const std::string run_dir =
      (fs::temp_directory_path() / ("ck-ledger-m1-" + std::to_string(getpid()))).string();
  auto r = test::run_cli(mariadb_cell(run_dir, "1"), 3min);
  EXPECT_EQ(r.code(), 0) << r.output;
  EXPECT_NE(r.output.find("pass: 2 cycle(s) of sigkill"), std::string::npos) << r.output;
  EXPECT_TRUE(test::no_children_left());
  fs::remove_all(run_dir);
}

TEST(LedgerDaemons, MariadbWithFlushOncePerTimeoutIsCaught) {
  if (auto why = mariadb_skip_reason(); !why.empty()) GTEST_SKIP() << why;
  const std::string run_dir =
      (fs::temp_directory_path() / ("ck-ledger-m0-" + std::to_string(getpid()))).string();
  auto r = test::run_cli(mariadb_cell(run_dir, "0"), 3min);
  EXPECT_EQ(r.code(), 1) << r.output;
  // Which cycle and how many depend on timing: all 80 when the workload takes under a second;
  // when it is slow (an ASan build) something in the server writes the log about once a second
  // even so, and a cycle may lose nothing. Each cycle re-puts the same 80 keys, so a loss in the
  // second cycle shows as keys holding the first cycle's values. Either way: a violation of the
  // online check that names acknowledged writes it could not find.
  EXPECT_TRUE(std::regex_search(r.output, std::regex("violation: cycle [01]: online check")))
      << r.output;
  EXPECT_TRUE(std::regex_search(
      r.output, std::regex("lost [1-9][0-9]* of 80 acked|[1-9][0-9]* acked key\\(s\\) hold an "
                           "older value")))
      << r.output;
  EXPECT_TRUE(test::no_children_left());
  fs::remove_all(run_dir);
}

// etcd 3.4 (Go, sd_notify READY=1) through etcdctl, on unix sockets in the run dir. It fsyncs its
// WAL before it acknowledges, so no setting of it loses acknowledged keys to a SIGKILL (its
// --unsafe-no-fsync loses them only to a power loss, and the power-loss shim cannot see a Go
// binary's system calls). What it needs from crashkit is systemd's semantics: --before-start
// removes the sockets a SIGKILL left behind (etcd will not bind over them), and its SIGTERM,
// which it re-raises after a clean shutdown, is a clean stop.
std::vector<std::string> etcd_cell(const std::string& fault, bool before_start) {
  const std::string ctl = "ETCDCTL_API=3 etcdctl --endpoints unix://c:1";
  std::vector<std::string> argv{
      kCli,
      "run",
      "--fault",
      fault,
      "--cycles",
      "2",
      "--ready-timeout",
      "60s",
      "--workload",
      kCli + " workload --ledger {ledger} --count 20 --concurrency 2 --put '" + ctl +
          " put {key} {value}'",
      "--check",
      kCli + " verify --ledger {ledger} --get '" + ctl + " get --print-value-only {key}'"};
  if (before_start) argv.insert(argv.end(), {"--before-start", "rm -f c:1 p:2"});
  argv.insert(
      argv.end(),
      {"--", "etcd", "--name", "n", "--data-dir", "{data_dir}", "--listen-client-urls",
       "unix://c:1", "--advertise-client-urls", "unix://c:1", "--listen-peer-urls", "unix://p:2",
       "--initial-advertise-peer-urls", "unix://p:2", "--initial-cluster", "n=unix://p:2"});
  return argv;
}

TEST(LedgerDaemons, EtcdKeepsAcknowledgedKeysAndStopsCleanly) {
  if (!installed("/usr/bin/etcd") || !installed("/usr/bin/etcdctl"))
    GTEST_SKIP() << "etcd-server/etcd-client not installed (scripts/setup)";
  for (const char* fault : {"sigkill", "sigterm"}) {
    auto r = test::run_cli(etcd_cell(fault, true), 3min);
    EXPECT_EQ(r.code(), 0) << fault << "\n" << r.output;
    EXPECT_NE(r.output.find(std::string("pass: 2 cycle(s) of ") + fault), std::string::npos)
        << r.output;
  }
  // Without the hook, the socket the SIGKILL left behind keeps it from starting again.
  auto stale = test::run_cli(etcd_cell("sigkill", false), 3min);
  EXPECT_EQ(stale.code(), 1) << stale.output;
  EXPECT_NE(stale.output.find("not_ready: cycle 0: after restart: exited before READY"),
            std::string::npos)
      << stale.output;
  EXPECT_NE(stale.output.find("address already in use"), std::string::npos) << stale.output;
  EXPECT_TRUE(test::no_children_left());
}

}  // namespace
}  // namespace crashkit
