// `crashkit run` in power-loss mode, around the edges: what it refuses, what only the target
// gets (the shim, the io_uring filter), and the rollback report a failing cell leaves behind.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "../support/cli_runner.hpp"
#include "../support/kvd.hpp"

namespace crashkit {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

const std::string kCli = CRASHKIT_CLI;
const std::string kFixtures = fs::path(CRASHKIT_KVD).parent_path().string();
const std::string kNotify = CRASHKIT_NOTIFY_FIXTURE;
const std::string kCases = kFixtures + "/powerloss-cases";

std::vector<std::string> path_env() {
  return {"PATH=" + kFixtures + ":" + getenv("PATH")};
}

TEST(PowerlossCli, RefusesAStaticallyLinkedTargetInOneLine) {
  auto r = test::run_cli({kCli, "run", "--fault", "powerloss", "--", "/sbin/ldconfig"});
  if (r.output.find("statically linked") == std::string::npos && r.code() != 2)
    GTEST_SKIP() << "/sbin/ldconfig is not statically linked here: " << r.output;
  EXPECT_EQ(r.code(), 2) << r.output;
  EXPECT_NE(r.output.find("/sbin/ldconfig is statically linked"), std::string::npos) << r.output;
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
}

TEST(PowerlossCli, BadSpellingsAreUsageErrors) {
  for (const char* f : {"powerloss(bogus)", "powerloss-after=xyz", "powerloss()", "powerlos"}) {
    auto r = test::run_cli({kCli, "run", "--fault", f, "--", kNotify});
    EXPECT_EQ(r.code(), 2) << f << ": " << r.output;
    EXPECT_NE(r.output.find("--fault"), std::string::npos) << f << ": " << r.output;
  }
  auto m = test::run_cli(
      {kCli, "run", "--fault", "powerloss", "--powerloss-model", "xfs", "--", kNotify});
  EXPECT_EQ(m.code(), 2) << m.output;
}

// The target of a power-loss cell cannot set up io_uring (its I/O would bypass the shim);
// a SIGKILL cell's target can, where the kernel has io_uring at all.
TEST(PowerlossCli, IoUringIsDeniedToThePowerlossTargetOnly) {
  auto probe = [&](const std::string& fault) {
    auto out = fs::temp_directory_path() / ("ck-uring-" + std::to_string(getpid()) + fault);
    auto r = test::run_cli({kCli, "run", "-q", "--fault", fault, "--", "/bin/sh", "-c",
                            kCases + " uring-probe " + out.string() + "; exec " + kNotify});
    EXPECT_EQ(r.code(), 0) << r.output;
    std::ifstream in(out);
    std::string what;
    in >> what;
    fs::remove(out);
    return what;
  };
  EXPECT_EQ(probe("powerloss"), "ENOSYS");
  const std::string native = probe("sigkill");
  if (native != "available") GTEST_SKIP() << "this kernel has no io_uring here: " << native;
}

// Only the target runs under the shim: the workload and the checks are never journalled.
TEST(PowerlossCli, OnlyTheTargetRunsUnderTheShim) {
  const std::string clean =
      "case \"${LD_PRELOAD-}${CRASHKIT_POWERLOSS_DIR-}\" in *powerloss*) exit 1;; esac";
  auto r = test::run_cli(
      {kCli, "run", "--fault", "powerloss", "--workload", clean, "--check", clean, "--", "/bin/sh",
       "-c", "case \"$LD_PRELOAD\" in *crashkit_powerloss*) exec " + kNotify + ";; esac; exit 9"});
  EXPECT_EQ(r.code(), 0) << r.output;
}

// A failing power-loss cell keeps its rollback report, which explains each undone change.
TEST(PowerlossCli, AFindingKeepsAReportThatExplainsTheRollback) {
  auto env = path_env();
  env.push_back("KVD_BUG=no-dir-fsync");
  auto run_dir = fs::temp_directory_path() / ("ck-plreport-" + std::to_string(getpid()));
  fs::remove_all(run_dir);
  auto r = test::run_cli(
      test::with_kvd(
          {kCli, "run", "--fault", "powerloss", "--run-dir", run_dir.string(), "--workload",
           "kvd-workload --socket {run_dir}/kvd.sock --ledger {ledger} --count 16 "
           "--keys 6",
           "--check", "kvd-verify --socket {run_dir}/kvd.sock --ledger {ledger}", "--"},
          "kvd"),
      2min, env);
  EXPECT_EQ(r.code(), 1) << r.output;
  EXPECT_NE(r.output.find("violation"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("power loss: "), std::string::npos) << r.output;
  std::ifstream in(run_dir / "artifacts" / "powerloss.0.txt");
  std::string report{std::istreambuf_iterator<char>(in), {}};
  EXPECT_NE(report.find("snapshot.tmp renamed over snapshot"), std::string::npos) << report;
  EXPECT_NE(report.find("directory never fsynced: rename undone"), std::string::npos) << report;
  fs::remove_all(run_dir);
}

// A target that never loaded the shim journalled nothing: that is a harness error, never a
// silent pass (here the loader cannot find the shim; with --user it could not read it).
TEST(PowerlossCli, ATargetThatNeverLoadedTheShimIsAHarnessError) {
  auto r = test::run_cli({kCli, "run", "--fault", "powerloss", "--", kNotify}, 1min,
                         {"CRASHKIT_POWERLOSS_SHIM=/nonexistent/libcrashkit_powerloss.so"});
  EXPECT_EQ(r.code(), 3) << r.output;
  EXPECT_NE(r.output.find("never loaded the journal shim"), std::string::npos) << r.output;
  EXPECT_EQ(test::run_cli({kCli, "run", "-q", "--fault", "powerloss", "--", kNotify}).code(), 0);
}

}  // namespace
}  // namespace crashkit
