// Crash points out of process: each action, exact counters, plan errors, the compiled-out
// build, and crash-plan cells through `crashkit run`.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "../support/cli_runner.hpp"
#include "crashkit/crash_counters.hpp"
#include "crashkit/crash_plan.hpp"
#include "crashkit/harness/compiled_points.hpp"

namespace crashkit {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

const std::string kCli = CRASHKIT_CLI;
const std::string kActions = CRASHKIT_CRASH_ACTIONS;
const std::string kActionsOff = CRASHKIT_CRASH_ACTIONS_OFF;
const std::string kPointd = CRASHKIT_POINTD;

test::CliRun actions(const std::string& plan, int n = 10, std::vector<std::string> env = {}) {
  env.push_back("CRASHKIT_PLAN=" + plan);
  // Under ASan the runtime would turn SIGSEGV into a report and exit 1; we test the signal.
  env.push_back("ASAN_OPTIONS=handle_segv=0");
  return test::run_cli({kActions, std::to_string(n)}, 1min, env);
}

TEST(CrashPointActions, EachActionEndsTheProcessAsDocumented) {
  EXPECT_TRUE(actions("demo.point@3=kill").status.killed_by(SIGKILL));
  EXPECT_TRUE(actions("demo.point@3=abort").status.killed_by(SIGABRT));
  EXPECT_TRUE(actions("demo.point@3=segv").status.killed_by(SIGSEGV));
  EXPECT_EQ(actions("demo.point@3=exit(7)").code(), 7);
  EXPECT_EQ(actions("demo.point@3=throw").code(), 42);
  EXPECT_EQ(actions("demo.fault@4=error(ENOSPC)").code(), 40 + ENOSPC);
  EXPECT_EQ(actions("demo.fault@%5=error(EIO)").code(), 40 + EIO);
  auto t0 = std::chrono::steady_clock::now();
  auto delayed = actions("demo.point@2+=delay(20ms)", 4);
  EXPECT_EQ(delayed.code(), 0);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 60ms);  // crossings 2, 3, 4
  auto hang = test::run_cli({kActions, "10"}, 300ms, {"CRASHKIT_PLAN=demo.point@1=hang"});
  EXPECT_TRUE(hang.status.killed_by(SIGKILL));  // still hanging when the runner gave up
}

TEST(CrashPointActions, FirePathReportsThePointAndCrossing) {
  auto r = actions("demo.point@3=exit(7)");
  EXPECT_NE(r.output.find("crash point demo.point fired at crossing 3: exit"), std::string::npos)
      << r.output;
}

TEST(CrashPointActions, PlanErrorsExitWithADistinctStatus) {
  auto unknown = actions("demo.nope@1=kill");
  EXPECT_EQ(unknown.code(), kPlanErrorExit);
  EXPECT_NE(unknown.output.find(
                "unknown crash point 'demo.nope'; this binary has: demo.fault, demo.point"),
            std::string::npos)
      << unknown.output;
  auto syntax = actions("demo.point@=kill");
  EXPECT_EQ(syntax.code(), kPlanErrorExit);
  auto wrong_site = actions("demo.point@1=error(EIO)");
  EXPECT_EQ(wrong_site.code(), kPlanErrorExit);
  EXPECT_NE(wrong_site.output.find("needs a CRASHKIT_FAULT site"), std::string::npos);
}

TEST(CrashPointCounters, CountsAreExactAndSurviveSigkill) {
  auto path = fs::temp_directory_path() / ("ck-counters-" + std::to_string(getpid()));
  ASSERT_TRUE(create_crash_counters(path.string()));
  auto r = test::run_cli({kActions, "10"}, 1min,
                         {"CRASHKIT_COUNTERS=" + path.string(), "CRASHKIT_PLAN=demo.point@7=kill"});
  EXPECT_TRUE(r.status.killed_by(SIGKILL));
  auto counts = read_crash_counters(path.string());
  EXPECT_EQ(counts["demo.point"], 7u);
  EXPECT_EQ(counts["demo.fault"], 6u);
  fs::remove(path);
}

TEST(CrashPointCompiledOut, LeavesNoSectionNoSymbolNoCall) {
  auto off = read_compiled_points(kActionsOff);
  ASSERT_TRUE(off) << off.error().message;
  EXPECT_TRUE(off->empty());
  auto on = read_compiled_points(kActions);
  ASSERT_TRUE(on);
  EXPECT_EQ(on->size(), 2u);
  std::ifstream in(kActionsOff, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(bytes.find("crashkit_sites"), std::string::npos);
  EXPECT_EQ(bytes.find("_ZN8crashkit6detail5crossERNS0_4SiteE"), std::string::npos);
  EXPECT_EQ(bytes.find("demo.point"), std::string::npos);
  // And it still runs its loop with a plan in the environment: nothing is armed.
  auto r = test::run_cli({kActionsOff, "10"}, 1min, {"CRASHKIT_PLAN=demo.point@1=kill"});
  EXPECT_EQ(r.code(), 0) << r.output;
}

TEST(CrashPointCompiledOut, NotAnElfIsAUsageError) {
  auto r = read_compiled_points("/etc/hostname");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("not a 64-bit ELF"), std::string::npos);
}

std::vector<std::string> pointd_run(std::vector<std::string> options, const std::string& bug = "") {
  std::vector<std::string> argv{kCli, "run", "-q"};
  argv.insert(argv.end(), options.begin(), options.end());
  for (std::string x : std::vector<std::string>{
           "--workload", kPointd + " load --socket {run_dir}/s --count 7 --ledger {ledger}",
           "--check", kPointd + " check --data-dir {data_dir} --ledger {ledger}", "--", kPointd,
           "serve", "--data-dir", "{data_dir}", "--socket", "{run_dir}/s"})
    argv.push_back(x);
  if (!bug.empty()) {
    argv.push_back("--bug");
    argv.push_back(bug);
  }
  return argv;
}

TEST(CrashPlanCells, PlannedCrashPassesAndNamesTheFire) {
  auto r = test::run_cli(pointd_run({"--plan", "append.after_write@4=kill"}));
  EXPECT_EQ(r.code(), 0) << r.output;
  EXPECT_NE(r.output.find("pass: append.after_write@4 fired"), std::string::npos) << r.output;
}

TEST(CrashPlanCells, RecoveryPointsFireOnTheRestart) {
  auto r = test::run_cli(pointd_run({"--plan", "recover.record@5=kill", "--plan-on", "restart"}));
  EXPECT_EQ(r.code(), 0) << r.output;
  EXPECT_NE(r.output.find("recover.record@5 fired"), std::string::npos) << r.output;
}

TEST(CrashPlanCells, DeathElsewhereIsUnexpectedExit) {
  auto r = test::run_cli(pointd_run({"--plan", "append.after_fsync@6=kill"}, "abort-at-3"));
  EXPECT_EQ(r.code(), 1) << r.output;
  EXPECT_NE(r.output.find("unexpected_exit: cycle 0: daemon died where no crash was planned: "
                          "killed by SIGABRT"),
            std::string::npos)
      << r.output;
}

TEST(CrashPlanCells, UnreachedCrossingIsReportedNotAFinding) {
  auto r = test::run_cli(pointd_run({"--plan", "append.before@99=kill"}));
  EXPECT_EQ(r.code(), 0) << r.output;
  EXPECT_NE(
      r.output.find("fault_not_reached: planned crossing not reached: append.before crossed 7"),
      std::string::npos)
      << r.output;
}

TEST(CrashPlanCells, AckBeforeWriteIsCaught) {
  auto r = test::run_cli(pointd_run({"--plan", "append.before@3=kill"}, "ack-early"));
  EXPECT_EQ(r.code(), 1) << r.output;
  EXPECT_NE(r.output.find("violation: cycle 0: online check"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("2 records, expected at least 3"), std::string::npos) << r.output;
}

TEST(CrashPlanCells, UnknownPointIsCaughtBeforeRunning) {
  auto r = test::run_cli(pointd_run({"--plan", "append.nope@1=kill"}));
  EXPECT_EQ(r.code(), 2) << r.output;
  EXPECT_NE(r.output.find("unknown crash point 'append.nope'"), std::string::npos) << r.output;
}

TEST(CrashPointsCli, PointsListsEveryCompiledPoint) {
  auto r = test::run_cli({kCli, "points", kPointd});
  EXPECT_EQ(r.code(), 0);
  for (auto p : {"point\tappend.after_fsync", "point\tappend.after_write", "point\tappend.before",
                 "fault\tappend.fsync", "fault\tappend.write", "point\trecover.begin",
                 "point\trecover.record"})
    EXPECT_NE(r.output.find(p), std::string::npos) << p << "\n" << r.output;
  EXPECT_EQ(test::run_cli({kCli, "points", "/nonexistent"}).code(), 2);
}

TEST(CrashPointsCli, DiscoveryCountsAreExact) {
  auto r = test::run_cli({kCli, "discover", "-q", "--json", "--workload",
                          kPointd + " load --socket {run_dir}/s --count 7", "--", kPointd, "serve",
                          "--data-dir", "{data_dir}", "--socket", "{run_dir}/s"});
  ASSERT_EQ(r.code(), 0) << r.output;
  auto j = nlohmann::json::parse(r.output);
  for (auto p : {"append.before", "append.write", "append.after_write", "append.fsync",
                 "append.after_fsync"}) {
    EXPECT_EQ(j[p]["run"], 7) << p;
    EXPECT_EQ(j[p]["recovery"], 0) << p;
  }
  EXPECT_EQ(j["recover.begin"]["run"], 1);
  EXPECT_EQ(j["recover.begin"]["recovery"], 1);
  EXPECT_EQ(j["recover.record"]["run"], 0);
  EXPECT_EQ(j["recover.record"]["recovery"], 7);
}

// A discovery run that fails keeps its run dir, as a failing cell does, and says where it is.
TEST(CrashPointsCli, FailedDiscoveryNamesItsKeptRunDir) {
  auto r = test::run_cli(
      {kCli, "discover", "-q", "--", CRASHKIT_NOTIFY_FIXTURE, "--mode", "exit-before-ready"});
  EXPECT_EQ(r.code(), 3) << r.output;
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
  const std::string says = "; run dir kept: ";
  auto at = r.output.find(says);
  ASSERT_NE(at, std::string::npos) << r.output;
  fs::path kept = r.output.substr(at + says.size(), r.output.find('\n', at) - at - says.size());
  EXPECT_TRUE(fs::is_directory(kept / "artifacts")) << r.output;
  fs::remove_all(kept);

  auto keep = test::run_cli({kCli, "discover", "-q", "--keep", "--json", "--",
                             CRASHKIT_NOTIFY_FIXTURE, "--mode", "ready"});
  EXPECT_EQ(keep.code(), 0) << keep.output;
  const std::string said = "crashkit: run dir kept: ";
  at = keep.output.find(said);
  ASSERT_NE(at, std::string::npos) << keep.output;
  kept = keep.output.substr(at + said.size(), keep.output.find('\n', at) - at - said.size());
  EXPECT_TRUE(fs::is_directory(kept / "artifacts")) << keep.output;
  fs::remove_all(kept);
}

// Only the target of a cell is armed: never the harness, nor the workload and checks it spawns,
// even when the harness itself was started with a plan in its environment.
TEST(CrashPlanScope, TheHarnessIgnoresAPlanInItsOwnEnvironment) {
  auto r = test::run_cli({kCli, "--help"}, std::chrono::minutes(1), {"CRASHKIT_PLAN=x@1=kill"});
  EXPECT_EQ(r.code(), 0) << r.output;
}

TEST(CrashPlanScope, AnInheritedPlanReachesNoChild) {
  const std::string unarmed = "test -z \"${CRASHKIT_PLAN-}${CRASHKIT_COUNTERS-}\" && ";
  auto argv = pointd_run({});
  auto workload = std::find(argv.begin(), argv.end(), "--workload") + 1;
  *workload = unarmed + *workload;
  auto check = std::find(argv.begin(), argv.end(), "--check") + 1;
  *check = unarmed + *check;
  // Inherited by the target, this plan would kill it at its first append: unexpected_exit.
  auto r = test::run_cli(argv, std::chrono::minutes(2), {"CRASHKIT_PLAN=append.before@1=kill"});
  EXPECT_EQ(r.code(), 0) << r.output;
  // In a plan cell the target is armed (the planned point fires), the commands still are not.
  argv.insert(argv.begin() + 3, {"--plan", "append.after_write@4=kill"});
  r = test::run_cli(argv, std::chrono::minutes(2), {"CRASHKIT_PLAN=append.before@1=kill"});
  EXPECT_EQ(r.code(), 0) << r.output;
  EXPECT_NE(r.output.find("append.after_write@4 fired"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace crashkit
