// Real daemons under power loss (`crashkit run --fault powerloss`), each row two-sided: the
// SIGKILL cell passes (a killed process leaves its writes in the page cache), and the power-loss
// cell gives the stated outcome: a pass for the durable configuration, a finding for the lossy
// one, which shows the check able to fail. Every workload writes what was acknowledged to the
// ledger and every check requires exactly that to be present after the restart.
//
//   kvd                         correct: pass; no-dir-fsync, wal-fsync-every-5,
//                               checkpoint-tmp-unsynced: found (violation or not_ready)
//   redis-server 7.0            appendfsync always: pass; everysec: violation
//   PostgreSQL 15               defaults: pass; fsync=off: violation
//   MariaDB 10.11 (mariadbd)    innodb_flush_log_at_trx_commit=1: pass; =2: violation
//
// Only the target runs under the journal shim; --prepare, the workload and the checks do not,
// so what --prepare leaves in the data dir is the durable baseline.
#include <gtest/gtest.h>
#include <pwd.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <regex>
#include <string>
#include <vector>

#include "../support/cli_runner.hpp"
#include "../support/kvd.hpp"
#include "../support/process_checks.hpp"
#include "../support/redis.hpp"

namespace crashkit {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

const std::string kCli = CRASHKIT_CLI;
const fs::path kFixtures = fs::path(CRASHKIT_KVD).parent_path();
const char* kRedis = test::kRedisServer;
const char* kPostgres = "/usr/lib/postgresql/15/bin/postgres";
const char* kInitdb = "/usr/lib/postgresql/15/bin/initdb";
const char* kMariadbd = "/usr/sbin/mariadbd";
const char* kMariadbInstallDb = "/usr/bin/mariadb-install-db";

bool installed(const char* path) {
  return access(path, X_OK) == 0;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  return {std::istreambuf_iterator<char>(in), {}};
}

// One `crashkit run` in a run dir of its own (kept by the CLI so the rollback reports can be
// read, removed here).
struct Cell {
  test::CliRun run;
  std::string reports;  // artifacts/powerloss.*.txt, for failure messages
  int durable = -1;     // journalled changes that were durable at the first cut

  bool passed(const std::string& fault) const {
    return run.code() == 0 && run.output.find("pass: ") != std::string::npos &&
           run.output.find("of " + fault + " recovered") != std::string::npos;
  }
  bool found(const std::string& outcome) const {
    return run.code() == 1 && run.output.find(outcome + ": ") != std::string::npos;
  }
  // The reports first: a CI log is read from its end, where crashkit's own verdict should be.
  std::string why() const {
    return "--- rollback reports ---\n" + reports + "\n--- crashkit run ---\n" + run.output;
  }
};

Cell run_cell(const fs::path& run_dir, const std::string& fault, std::vector<std::string> args,
              const std::vector<std::string>& env = {}, Duration timeout = 3min) {
  std::error_code ec;
  fs::remove_all(run_dir, ec);
  std::vector<std::string> argv{kCli,      "run", "--keep", "--run-dir", run_dir.string(),
                                "--fault", fault};
  argv.insert(argv.end(), args.begin(), args.end());
  Cell c;
  const auto t0 = std::chrono::steady_clock::now();
  c.run = test::run_cli(argv, timeout, env);
  // Each cell's wall time, in the XML output (--gtest_output=xml) as <fault>_ms.
  ::testing::Test::RecordProperty(
      fault + "_ms", static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                          std::chrono::steady_clock::now() - t0)
                                          .count()));
  for (int cycle = 0; cycle < 8; ++cycle) {
    auto p = run_dir / "artifacts" / ("powerloss." + std::to_string(cycle) + ".txt");
    if (!fs::exists(p)) break;
    std::string text = slurp(p);
    if (text.size() > 4000) text = text.substr(0, 4000) + "...\n";
    c.reports += text;
  }
  // A failed --prepare is explained by its own log and its server's, not by their last line.
  if (c.run.code() != 0)
    for (const auto& p : {run_dir / "artifacts" / "prepare.log", run_dir / "prepare-mariadbd.log"})
      if (fs::exists(p)) {
        std::string text = slurp(p);
        if (text.size() > 3000) text = "..." + text.substr(text.size() - 3000);
        c.reports += "--- " + p.filename().string() + " ---\n" + text;
      }
  std::smatch m;
  static const std::regex kDurable(
      R"(cycle 0: power loss: [^\n]*?(\d+)( journalled change\(s\) were)? durable)");
  if (std::regex_search(c.run.output, m, kDurable)) c.durable = std::stoi(m[1]);
  fs::remove_all(run_dir, ec);
  return c;
}

// Under TMPDIR (the build's test-tmp under ctest), one per test and process.
fs::path run_dir_for(const std::string& name) {
  return fs::temp_directory_path() / ("ck-pl-" + name + "-" + std::to_string(getpid()));
}

// ---------------------------------------------------------------------------------------------
// kvd: the power-loss-only bugs pass SIGKILL and are found by power loss; the correct kvd passes.

std::vector<std::string> kvd_args() {
  const std::string bin = kFixtures.string() + "/";
  return test::with_kvd({"--cycles", "2", "--workload",
                         bin + "kvd-workload --socket {run_dir}/kvd.sock --ledger {ledger} --count "
                               "16 --keys 6 --tag {cycle}",
                         "--check-offline", bin + "kvd-fsck --data-dir {data_dir}", "--check",
                         bin + "kvd-verify --socket {run_dir}/kvd.sock --ledger {ledger}",
                         "--check", bin + "kvd-fsck --data-dir {data_dir} --no-temp", "--"},
                        CRASHKIT_KVD);
}

TEST(PowerlossKvd, CorrectKvdPassesPowerLoss) {
  auto c = run_cell(run_dir_for("kvd"), "powerloss", kvd_args());
  EXPECT_TRUE(c.passed("powerloss")) << c.why();
  EXPECT_GT(c.durable, 0) << "the shim saw none of kvd's writes\n" << c.why();
  EXPECT_TRUE(test::no_children_left());
}

class PowerlossKvdBug : public ::testing::TestWithParam<const char*> {};

TEST_P(PowerlossKvdBug, PassesSigkillAndIsFoundByPowerLoss) {
  const std::vector<std::string> env{std::string("KVD_BUG=") + GetParam()};
  auto kill = run_cell(run_dir_for("kvd-bug"), "sigkill", kvd_args(), env);
  EXPECT_TRUE(kill.passed("sigkill")) << kill.why();
  auto power = run_cell(run_dir_for("kvd-bug"), "powerloss", kvd_args(), env);
  EXPECT_TRUE(power.found("violation") || power.found("not_ready")) << power.why();
  EXPECT_NE(power.run.output.find("change(s) rolled back"), std::string::npos) << power.why();
  EXPECT_TRUE(test::no_children_left());
}

INSTANTIATE_TEST_SUITE_P(PowerlossOnlyBugs, PowerlossKvdBug,
                         ::testing::Values("no-dir-fsync", "wal-fsync-every-5",
                                           "checkpoint-tmp-unsynced"),
                         [](const auto& info) {
                           std::string n = info.param;
                           std::erase(n, '-');
                           return n;
                         });

// ---------------------------------------------------------------------------------------------
// redis-server: 50 SETs per cycle, each acknowledged by its OK, then SIGKILL or power loss.
//
// --prepare runs redis once, outside the shim, to lay out appendonlydir/: redis 7.0 creates that
// directory (and renames its first base file into it) at its first start and never fsyncs the
// data dir, so under the strict model a power loss in the first seconds of a fresh redis removes
// the whole AOF directory. That is a real finding (strict POSIX model), but not the one this
// row measures (appendfsync), so the layout is made the durable baseline.

std::vector<std::string> redis_args(const std::string& appendfsync) {
  const std::string cli = "redis-cli -s {run_dir}/r.sock";
  const std::string server =
      std::string(kRedis) + " --port 0 --dir {data_dir} --save '' --appendonly yes";
  std::vector<std::string> args{
      "--cycles",
      "2",
      "--prepare",
      server +
          " --unixsocket {run_dir}/p.sock >/dev/null & pid=$!; "
          "until redis-cli -s {run_dir}/p.sock ping >/dev/null 2>&1; do "
          "kill -0 $pid || exit 1; sleep 0.05; done; "
          "redis-cli -s {run_dir}/p.sock shutdown >/dev/null 2>&1; wait $pid",
      "--workload",
      "for i in $(seq 1 50); do test \"$(" + cli +
          " set k{cycle}.$i v$i)\" = OK || exit 1; echo k{cycle}.$i v$i >> {ledger}; done",
      "--check",
      "while read k v; do test \"$(" + cli +
          " get $k)\" = \"$v\" || { echo acknowledged $k lost; exit 1; }; done < {ledger}",
      "--"};
  for (auto& a : test::redis_server_argv()) args.push_back(a);
  for (const char* a : {"--appendonly", "yes", "--appendfsync"}) args.push_back(a);
  args.push_back(appendfsync);
  return args;
}

bool redis_missing() {
  return !installed(kRedis) || !installed("/usr/bin/redis-cli");
}

TEST(PowerlossRedis, AppendfsyncAlwaysKeepsAcknowledgedKeys) {
  if (redis_missing()) GTEST_SKIP() << "redis-server/redis-tools not installed (scripts/setup)";
  auto kill = run_cell(run_dir_for("redis"), "sigkill", redis_args("always"));
  EXPECT_TRUE(kill.passed("sigkill")) << kill.why();
  auto power = run_cell(run_dir_for("redis"), "powerloss", redis_args("always"));
  EXPECT_TRUE(power.passed("powerloss")) << power.why();
  EXPECT_GT(power.durable, 0) << "the shim saw none of redis's fsyncs\n" << power.why();
  EXPECT_TRUE(test::no_children_left());
}

TEST(PowerlossRedis, AppendfsyncEverysecLosesAcknowledgedKeys) {
  if (redis_missing()) GTEST_SKIP() << "redis-server/redis-tools not installed (scripts/setup)";
  auto kill = run_cell(run_dir_for("redis"), "sigkill", redis_args("everysec"));
  EXPECT_TRUE(kill.passed("sigkill")) << kill.why();
  // The last second of writes was never fsynced: the kill comes milliseconds after the last
  // SET, and redis fsyncs once a second.
  auto power = run_cell(run_dir_for("redis"), "powerloss", redis_args("everysec"));
  EXPECT_TRUE(power.found("violation")) << power.why();
  EXPECT_NE(power.run.output.find("lost"), std::string::npos) << power.why();
  EXPECT_NE(power.reports.find("appendonly.aof.1.incr.aof bytes"), std::string::npos)
      << power.why();
  EXPECT_TRUE(test::no_children_left());
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL 15: 20 INSERTs per cycle, each its own autocommit transaction, acknowledged when
// psql returns 0.
// Postgres refuses root: `--user postgres` runs it, its commands and its shim as postgres (the
// harness hands the run dir, the notify socket and the journal dir over). The run dir lives
// under /tmp, which postgres can reach.

std::string pg_run_dir(const std::string& name) {
  return "/tmp/ck-pl-pg-" + name + "-" + std::to_string(getpid());
}

std::vector<std::string> postgres_args(const std::vector<std::string>& settings) {
  const std::string psql = "psql -X -q -h {run_dir} -U postgres -d postgres -v ON_ERROR_STOP=1";
  std::string server = std::string(kPostgres) + " -D {data_dir} -k {run_dir} -c listen_addresses=";
  for (const auto& s : settings) server += " -c " + s;
  return {"--user",
          "postgres",
          "--cycles",
          "2",
          "--ready-timeout",
          "60s",
          "--prepare",
          std::string(kInitdb) + " -D {data_dir} -A trust -U postgres >/dev/null",
          "--workload",
          psql + " -c 'create table if not exists t(i int)' || exit 1; " +
              "for i in $(seq 1 20); do r=$(({cycle} * 1000 + i)); " + psql +
              " -c \"insert into t values ($r)\" || exit 1; echo $r >> {ledger}; done",
          "--check",
          psql + " -tAc 'select i from t' > {scratch}/rows || exit 1; " +
              "sort {scratch}/rows > {scratch}/sorted; " +
              "lost=$(sort {ledger} | comm -23 - {scratch}/sorted); " +
              "test -z \"$lost\" || { echo acknowledged rows lost: $lost; exit 1; }",
          "--",
          "/bin/sh",
          "-c",
          "exec " + server};
}

std::string postgres_skip_reason() {
  if (!installed(kPostgres)) return "postgresql-15 not installed (scripts/setup installs it)";
  if (geteuid() != 0) return "needs root to run postgres as the postgres user";
  if (getpwnam("postgres") == nullptr) return "no postgres user";
  return {};
}

TEST(PowerlossPostgres, DefaultsKeepCommittedRows) {
  if (auto why = postgres_skip_reason(); !why.empty()) GTEST_SKIP() << why;
  auto kill = run_cell(pg_run_dir("on"), "sigkill", postgres_args({}));
  EXPECT_TRUE(kill.passed("sigkill")) << kill.why();
  auto power = run_cell(pg_run_dir("on"), "powerloss", postgres_args({}));
  EXPECT_TRUE(power.passed("powerloss")) << power.why();
  EXPECT_GT(power.durable, 0) << "the shim saw none of postgres's fsyncs\n" << power.why();
  EXPECT_TRUE(test::no_children_left());
}

TEST(PowerlossPostgres, FsyncOffLosesCommittedRows) {
  if (auto why = postgres_skip_reason(); !why.empty()) GTEST_SKIP() << why;
  auto kill = run_cell(pg_run_dir("off"), "sigkill", postgres_args({"fsync=off"}));
  EXPECT_TRUE(kill.passed("sigkill")) << kill.why();
  auto power = run_cell(pg_run_dir("off"), "powerloss", postgres_args({"fsync=off"}));
  EXPECT_TRUE(power.found("violation")) << power.why();
  EXPECT_NE(power.run.output.find("acknowledged rows lost"), std::string::npos) << power.why();
  EXPECT_TRUE(test::no_children_left());
}

// ---------------------------------------------------------------------------------------------
// MariaDB (mariadbd 10.11): 100 INSERTs per cycle, each its own autocommit transaction,
// acknowledged when the client returns 0. fsync I/O without native AIO, so every write goes
// through calls the shim sees.
//
// --prepare initialises the data dir and creates the table with a mariadbd of its own, outside
// the shim: CREATE DATABASE / CREATE TABLE never fsync the directories they add entries to, so
// under the strict model a power loss soon after them removes the database directory and InnoDB
// then refuses to start ("File ./w/t.ibd was not found ... Cannot apply log"). A real finding
// for the strict model, but this row measures innodb_flush_log_at_trx_commit. mariadb-install-db
// takes seconds, so the first cell of a test saves its prepared data dir to `seed` and the
// second copies it.

std::vector<std::string> mariadbd(const std::string& socket) {
  return {kMariadbd, "--no-defaults", "--datadir={data_dir}", "--socket={run_dir}/" + socket,
          "--skip-networking", "--user=root", "--innodb-flush-method=fsync",
          "--innodb-use-native-aio=0",
          // Its own temp dir: the shared TMPDIR of a parallel test run lost a bootstrap
          // server's temp table under it ("Error on delete of .../#sql-temptable-....MAI").
          "--tmpdir={run_dir}"};
}

std::vector<std::string> mariadb_args(const std::string& flush_at_commit, const fs::path& seed) {
  const std::string client = "mariadb --no-defaults -u root -S {run_dir}/";
  std::string prepare_server;
  for (const auto& a : mariadbd("p.sock")) prepare_server += a + " ";
  const std::string s = seed.string();
  std::vector<std::string> args{
      "--cycles",
      "2",
      "--ready-timeout",
      "60s",
      "--prepare",
      "if [ -d " + s + " ]; then cp -a " + s + "/. {data_dir}/; exit; fi; " + kMariadbInstallDb +
          " --no-defaults --datadir={data_dir} --user=root "
          "--auth-root-authentication-method=socket --skip-test-db "
          // The bootstrap server without native AIO (io_uring) too, like every other mariadbd
          // here: it was the only one with it, and it aborted once in a clean-clone ASan run
          // ("[ERROR] Aborting"; the cause was not in the log then, it is printed now).
          "--innodb-use-native-aio=0 --tmpdir={run_dir} >/dev/null || exit 1; " +
          prepare_server + "2>{run_dir}/prepare-mariadbd.log & pid=$!; until " + client +
          "p.sock -e 'create database w; create table w.t (i int primary key) engine=innodb' "
          "2>/dev/null; do kill -0 $pid || exit 1; sleep 0.1; done; kill -TERM $pid; "
          "wait $pid && cp -a {data_dir} " +
          s,
      "--workload",
      "for i in $(seq 1 100); do r=$(({cycle} * 1000 + i)); " + client +
          "m.sock -e \"insert into w.t values ($r)\" || exit 1; echo $r >> {ledger}; done",
      "--check",
      client + "m.sock -N -B -e 'select i from w.t' > {scratch}/rows || exit 1; " +
          "sort {scratch}/rows > {scratch}/sorted; " +
          "lost=$(sort {ledger} | comm -23 - {scratch}/sorted); " +
          "test -z \"$lost\" || { echo acknowledged rows lost: $lost; exit 1; }",
      "--"};
  for (auto& a : mariadbd("m.sock")) args.push_back(a);
  args.push_back("--innodb-flush-log-at-trx-commit=" + flush_at_commit);
  return args;
}

// The prepared data dir shared by the cells of one test.
struct Seed {
  fs::path path = run_dir_for("mariadb-seed");
  Seed() { fs::remove_all(path); }
  ~Seed() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

std::string mariadb_skip_reason() {
  if (!installed(kMariadbd) || !installed(kMariadbInstallDb) || !installed("/usr/bin/mariadb"))
    return "mariadb-server/mariadb-client not installed (scripts/setup installs them)";
  if (geteuid() != 0) return "needs root: mariadbd runs with --user=root, its client as root";
  return {};
}

TEST(PowerlossMariadb, FlushLogAtTrxCommit1KeepsCommittedRows) {
  if (auto why = mariadb_skip_reason(); !why.empty()) GTEST_SKIP() << why;
  Seed seed;
  auto kill = run_cell(run_dir_for("mariadb"), "sigkill", mariadb_args("1", seed.path));
  EXPECT_TRUE(kill.passed("sigkill")) << kill.why();
  auto power = run_cell(run_dir_for("mariadb"), "powerloss", mariadb_args("1", seed.path));
  EXPECT_TRUE(power.passed("powerloss")) << power.why();
  EXPECT_GT(power.durable, 0) << "the shim saw none of mariadbd's fsyncs\n" << power.why();
  EXPECT_TRUE(test::no_children_left());
}

TEST(PowerlossMariadb, FlushLogAtTrxCommit2LosesCommittedRows) {
  if (auto why = mariadb_skip_reason(); !why.empty()) GTEST_SKIP() << why;
  Seed seed;
  auto kill = run_cell(run_dir_for("mariadb"), "sigkill", mariadb_args("2", seed.path));
  EXPECT_TRUE(kill.passed("sigkill")) << kill.why();
  // =2 writes the redo log at each commit and fsyncs it once a second.
  auto power = run_cell(run_dir_for("mariadb"), "powerloss", mariadb_args("2", seed.path));
  EXPECT_TRUE(power.found("violation")) << power.why();
  EXPECT_NE(power.run.output.find("acknowledged rows lost"), std::string::npos) << power.why();
  EXPECT_NE(power.reports.find("ib_logfile0 bytes"), std::string::npos) << power.why();
  EXPECT_TRUE(test::no_children_left());
}

}  // namespace
}  // namespace crashkit
