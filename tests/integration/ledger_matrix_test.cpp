// The ledger oracle and a daemon's unit file as matrix spec keys: `workload: {put: ...}`,
// `check_online: [{verify: {get|dump: ...}}]` and `unit: FILE`. Each form is two-sided: a store
// that keeps its writes passes, one that loses them on restart is caught with the lost keys named;
// a unit's KillSignal= makes a clean stop clean, and the spec's own stop_signal: wins over it.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "../support/cli_runner.hpp"
#include "../support/process_checks.hpp"
#include "../support/redis.hpp"

namespace crashkit {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

const std::string kCli = CRASHKIT_CLI;

class LedgerMatrix : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("ck-ledger-matrix-" + std::to_string(getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name) << text;
    return dir_ / name;
  }
  test::CliRun matrix(const fs::path& spec) {
    return test::run_cli({kCli, "matrix", "-q", spec.string()}, 3min);
  }

  // A "daemon" whose store is files in {data_dir}: it keeps what was written unless
  // `before_start` wipes the store, as a daemon that loses its data on restart would.
  std::string files_spec(const std::string& before_start, const std::string& check) {
    return "target: [/bin/sh, -c, \"exec sleep 1000\"]\n"
           "ready_when: \"cmd:true\"\n" +
           before_start +
           "workload: {put: \"printf %s {value} > {data_dir}/{key}\", count: 5, concurrency: 2}\n"
           "check_online:\n  - " +
           check + "\nfaults: [sigkill]\n";
  }

  fs::path dir_;
};

TEST_F(LedgerMatrix, WorkloadAndVerifyMapsPassAStoreThatKeepsItsWrites) {
  auto get = write("get.yaml",
                   files_spec("", "{verify: {get: \"cat {data_dir}/{key} 2>/dev/null || :\"}}"));
  auto r = matrix(get);
  EXPECT_EQ(r.code(), 0) << r.output;
  EXPECT_NE(r.output.find("1 cell(s)"), std::string::npos) << r.output;
  // dump: one call printing "KEY VALUE" lines.
  auto dump =
      write("dump.yaml", files_spec("",
                                    "{verify: {dump: \"cd {data_dir} && for k in *; do printf "
                                    "'%s %s\\\\n' $k $(cat $k); done\"}}"));
  r = matrix(dump);
  EXPECT_EQ(r.code(), 0) << r.output;
  EXPECT_TRUE(test::no_children_left());
}

TEST_F(LedgerMatrix, WorkloadAndVerifyMapsCatchAStoreThatLosesItsWrites) {
  auto spec =
      write("lossy.yaml", files_spec("before_start: \"rm -f {data_dir}/c*\"\n",
                                     "{verify: {get: \"cat {data_dir}/{key} 2>/dev/null || :\"}}"));
  auto r = matrix(spec);
  EXPECT_EQ(r.code(), 1) << r.output;
  // Two clients interleave in the ledger: the lost keys are listed in its order.
  EXPECT_NE(r.output.find("lost 10 of 10 acked (c"), std::string::npos) << r.output;
  EXPECT_TRUE(test::no_children_left());
}

TEST_F(LedgerMatrix, MapFormErrorsNameTheLine) {
  const std::string head = "target: [/bin/true]\nfaults: [sigkill]\n";
  struct Case {
    const char* yaml;
    const char* message;
  } cases[] = {
      {"workload: {count: 5}\n", ":3: workload: {...} needs put:"},
      {"workload: {put: x, count: 0}\n", ":3: count must be a whole number from 1 to 100000000"},
      {"workload: {put: x, count: abc}\n", ":3: count must be a whole number"},
      {"workload: {put: x, clients: 2}\n", ":3: unknown key 'clients'"},
      {"check_online: [{verify: {get: a, dump: b}}]\n", ":3: verify: give one of get: CMD"},
      {"check_online: [{verify: {}}]\n", ":3: verify: give one of get: CMD"},
      {"check_online: [{verify: {pending_may_land_late: true}}]\n",
       ":3: verify: give one of get: CMD"},
      {"check_online: [{verify: {get: a, pending_may_land_late: often}}]\n",
       ":3: pending_may_land_late must be true or false"},
      {"check_online: [{verfy: {get: a}}]\n", ":3: a check is a command or {verify:"},
      {"unit: no-such.service\n", "no-such.service"},
  };
  for (const auto& c : cases) {
    auto r = matrix(write("bad.yaml", head + c.yaml));
    EXPECT_EQ(r.code(), 2) << c.yaml << r.output;
    EXPECT_NE(r.output.find(c.message), std::string::npos) << c.yaml << r.output;
  }
}

// The notify fixture exits 1 on SIGTERM and 0 on SIGINT: its sigterm cell is clean only when
// stopped with SIGINT, which the unit's KillSignal= says; a spec's stop_signal: wins over it.
TEST_F(LedgerMatrix, UnitKeyAppliesTheUnitUnderTheSpecsOwnKeys) {
  write("fixture.service",
        "[Unit]\nDescription=x\n[Service]\nType=notify\nKillSignal=SIGINT\n"
        "EnvironmentFile=-/etc/default/x\n");
  const std::string target = "target: [" + std::string(CRASHKIT_NOTIFY_FIXTURE) +
                             ", --term-exit, \"1\", --int-exit, \"0\"]\nfaults: [sigterm]\n"
                             "unit: fixture.service\n";
  auto r = matrix(write("unit.yaml", target));
  EXPECT_EQ(r.code(), 0) << r.output;
  EXPECT_NE(r.output.find("fixture.service: EnvironmentFile="), std::string::npos) << r.output;
  r = matrix(write("flag.yaml", target + "stop_signal: SIGTERM\n"));
  EXPECT_EQ(r.code(), 1) << r.output;
}

// The README's redis example as a spec: appendfsync always passes, no persistence is caught.
TEST_F(LedgerMatrix, RedisThroughTheMapForms) {
  if (access(test::kRedisServer, X_OK) != 0 || access("/usr/bin/redis-cli", X_OK) != 0)
    GTEST_SKIP() << "redis-server/redis-tools not installed (scripts/setup)";
  auto spec = [&](const std::string& persistence) {
    std::string target;
    for (const auto& a : test::redis_server_argv()) target += "\"" + a + "\", ";
    return "target: [" + target + persistence +
           "]\n"
           "workload: {put: \"redis-cli -s {run_dir}/r.sock set {key} {value}\", count: 20, "
           "concurrency: 2}\n"
           "check_online: [{verify: {get: \"redis-cli -s {run_dir}/r.sock get {key}\"}}]\n"
           "faults: [sigkill, sigterm]\n";
  };
  auto r = matrix(write("always.yaml", spec("--appendonly, \"yes\", --appendfsync, always")));
  EXPECT_EQ(r.code(), 0) << r.output;
  r = matrix(write("none.yaml", spec("--appendonly, \"no\"")));
  EXPECT_EQ(r.code(), 1) << r.output;
  EXPECT_NE(r.output.find("lost 40 of 40 acked"), std::string::npos) << r.output;
  EXPECT_TRUE(test::no_children_left());
}

}  // namespace
}  // namespace crashkit
