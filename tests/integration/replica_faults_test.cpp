// Groups of replicas beyond signal faults (docs/replicas.md): scenarios (ordered steps, one cell
// each, with a bug only their order reveals), power loss of the picked replicas, and a crash plan
// armed in one replica, on its first start or on its restart (recovery points, and the matrix
// discovering them), each shown both ways.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "../support/cli_runner.hpp"
#include "../support/kvd.hpp"
#include "../support/process_checks.hpp"

namespace crashkit {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

const std::string kCli = CRASHKIT_CLI;

// A scenario says what a cross product cannot: replica 1 is killed, the workload goes on
// without it, 1 restarts, then the other two die, so only 1 serves. A store whose restarted
// replica does not catch up from a live peer before serving loses every write; the same store
// with a catch-up (RESYNC) passes. Writes and reads go to the replicas that are alive.
TEST(Replicas, ScenarioCatchesAReplicaThatServesBeforeCatchingUp) {
  const fs::path dir = fs::temp_directory_path() / ("ck-scenario-" + std::to_string(getpid()));
  fs::create_directories(dir);
  const std::string alive =
      "for r in {run_dir:0} {run_dir:1} {run_dir:2}; do kill -0 $(cat "
      "$r/pid 2>/dev/null) 2>/dev/null && ";
  auto spec = [&](const std::string& env, const std::string& steps) {
    const fs::path file = dir / "scenario.yaml";
    std::ofstream(file)
        << "target: [/bin/sh, -c, \"echo $$ > {run_dir}/pid; exec sleep 1000\"]\n"
           "replicas: 3\n"
           "ready_when: \"cmd:true\"\n"
        << env
        << "before_start: 'rm -f {data_dir}/c*; test -z \"$RESYNC\" || for r in {run_dir:0} "
           "{run_dir:1} {run_dir:2}; do test $r = {run_dir} && continue; kill -0 $(cat $r/pid "
           "2>/dev/null) 2>/dev/null && cp $r/data/c* {data_dir}/ 2>/dev/null && break; done; :'\n"
           "workload: {put: \""
        << alive
        << "printf %s {value} > $r/data/{key}; done; :\", count: 3}\n"
           "check_online: [{verify: {get: \""
        << alive << "test -e $r/data/{key} && exec cat $r/data/{key}; done; :\"}}]\n"
        << "scenarios:\n  - name: catch up before serving\n    steps: " << steps << "\n";
    return file.string();
  };
  const std::string steps =
      "[workload, {fault: sigkill@1}, workload, {restart: 1}, {fault: sigkill@0}, "
      "{fault: sigkill@2}, check]";
  auto caught = test::run_cli({kCli, "matrix", spec("", steps)});
  EXPECT_EQ(caught.code(), 1) << caught.output;
  EXPECT_NE(caught.output.find("scenario_catch_up_before_serving [violation] step 7 (check):"),
            std::string::npos)
      << caught.output;
  EXPECT_NE(caught.output.find("lost 3 of 3 acked"), std::string::npos) << caught.output;
  EXPECT_NE(caught.output.find("--cell scenario_catch_up_before_serving --seed"), std::string::npos)
      << caught.output;
  auto resync = spec("env: {RESYNC: \"1\"}\n", steps);
  auto held = test::run_cli({kCli, "matrix", "--json", (dir / "r.json").string(), resync});
  EXPECT_EQ(held.code(), 0) << held.output;
  // Without the step that leaves 1 serving alone, the store without catch-up passes too: only
  // the scenario's order shows the bug.
  auto short_steps = test::run_cli(
      {kCli, "matrix", spec("", "[workload, {fault: sigkill@1}, workload, {restart: 1}, check]")});
  EXPECT_EQ(short_steps.code(), 0) << short_steps.output;
  fs::remove_all(dir);
  EXPECT_TRUE(test::no_children_left());
}

TEST(Replicas, ScenarioSpecErrorsNameTheLine) {
  const fs::path dir = fs::temp_directory_path() / ("ck-scenario-e-" + std::to_string(getpid()));
  fs::create_directories(dir);
  const std::string head =
      "target: [/bin/sh, -c, \"exec sleep 1000\"]\nreplicas: 3\nready_when: \"cmd:true\"\n";
  struct Case {
    const char* steps;
    const char* message;
  } cases[] = {
      {"[jump]", "unknown step 'jump'"},
      {"[{restart: 3}]", "there are replicas 0 to 2"},
      {"[{restart: one}]", "restart: takes a replica index or all"},
      {"[workload]", "a workload step needs workload:"},
      {"[{fault: powerloss-after=1s}]",
       "a scenario's fault is sigterm@PICK, sigkill@PICK or powerloss@PICK"},
      {"[{fault: sigkill@leader}]", "@leader needs --leader CMD"},
      {"[{sleep: soon}]", "sleep"},
  };
  for (const auto& c : cases) {
    std::ofstream(dir / "bad.yaml")
        << head << "scenarios:\n  - name: x\n    steps: " << c.steps << "\n";
    auto r = test::run_cli({kCli, "matrix", (dir / "bad.yaml").string()});
    EXPECT_EQ(r.code(), 2) << c.steps << "\n" << r.output;
    EXPECT_NE(r.output.find("bad.yaml:"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find(c.message), std::string::npos) << c.steps << "\n" << r.output;
  }
  std::ofstream(dir / "ok.yaml") << head << "scenarios:\n  - name: x\n    steps: [check]\n";
  auto r = test::run_cli({kCli, "matrix", (dir / "ok.yaml").string(), "--cell", "scenario_y"});
  EXPECT_EQ(r.code(), 2) << r.output;
  EXPECT_NE(r.output.find("--cell scenario_y: no such cell; the spec has: scenario_x"),
            std::string::npos)
      << r.output;
  fs::remove_all(dir);
}

// powerloss@PICK: each hit replica loses what it never made durable, from its own journal. Three
// independent kvd replicas, the verified ledger on replica 0: kvd with wal-fsync-every-5 is
// caught by powerloss@all (a correlated outage) and not by powerloss@1, which spares replica 0;
// the correct kvd passes both.
TEST(Replicas, PowerLossHitsThePickedReplicasOnly) {
  const std::string bin = fs::path(CRASHKIT_KVD).parent_path().string();
  auto cell = [&](const char* fault) {
    return test::with_kvd(
        {kCli, "run", "--replicas", "3", "--fault", fault, "--workload",
         bin +
             "/kvd-workload --socket {run_dir:0}/kvd.sock --ledger {ledger} --count 16 --keys 6 "
             "&& " +
             bin +
             "/kvd-workload --socket {run_dir:1}/kvd.sock --ledger {scratch}/l1 --count 16 "
             "--keys 6",
         "--check", bin + "/kvd-verify --socket {run_dir:0}/kvd.sock --ledger {ledger}", "--"},
        bin + "/kvd");
  };
  for (const char* fault : {"powerloss@all", "powerloss@1"}) {
    auto r = test::run_cli(cell(fault));
    EXPECT_EQ(r.code(), 0) << fault << "\n" << r.output;
  }
  auto all = test::run_cli(cell("powerloss@all"), 2min, {"KVD_BUG=wal-fsync-every-5"});
  EXPECT_EQ(all.code(), 1) << all.output;
  EXPECT_NE(all.output.find("acknowledged data lost"), std::string::npos) << all.output;
  EXPECT_NE(all.output.find("replica 0: power loss: "), std::string::npos) << all.output;
  EXPECT_NE(all.output.find("never fsynced: rolled back"), std::string::npos) << all.output;
  auto one = test::run_cli(cell("powerloss@1"), 2min, {"KVD_BUG=wal-fsync-every-5"});
  EXPECT_EQ(one.code(), 0) << one.output;
  EXPECT_TRUE(test::no_children_left());
}

// --plan in one replica (--plan-replica I; matrix crash_points: {replica: I}): the planned point
// fires in that replica while the others stay up. Three independent kvd replicas, the workload
// and checks on replica 2: the correct kvd passes a crash between a WAL record's header and its
// payload; torn-tail-fatal refuses to restart (not_ready, naming the replica); a plan armed in
// replica 1, which the workload never touches, is fault_not_reached.
TEST(Replicas, CrashPlanInOneReplica) {
  const std::string bin = fs::path(CRASHKIT_KVD).parent_path().string();
  auto cell = [&](const char* replica) {
    return std::vector<std::string>{
        kCli,
        "run",
        "--plan",
        "wal.append.after_header@3=kill",
        "--plan-replica",
        replica,
        "--replicas",
        "3",
        "--workload",
        bin + "/kvd-workload --socket {run_dir:2}/kvd.sock --ledger {ledger} --count 10",
        "--check",
        bin + "/kvd-verify --socket {run_dir:2}/kvd.sock --ledger {ledger}",
        "--",
        bin + "/kvd",
        "--data-dir",
        "{data_dir}",
        "--socket",
        "{run_dir}/kvd.sock"};
  };
  auto ok = test::run_cli(cell("2"));
  EXPECT_EQ(ok.code(), 0) << ok.output;
  EXPECT_NE(ok.output.find("fired in replica 2 of 3"), std::string::npos) << ok.output;
  auto torn = test::run_cli(cell("2"), 2min, {"KVD_BUG=torn-tail-fatal"});
  EXPECT_EQ(torn.code(), 1) << torn.output;
  EXPECT_NE(torn.output.find("not_ready: cycle 0: after restart: replica 2: exited before READY"),
            std::string::npos)
      << torn.output;
  auto missed = test::run_cli(cell("1"));
  EXPECT_EQ(missed.code(), 0) << missed.output;
  EXPECT_NE(missed.output.find("fault_not_reached: the plan wal.append.after_header@3=kill never "
                               "fired in replica 1"),
            std::string::npos)
      << missed.output;
  // The same in a matrix spec: crash_points: {replica: 2, ...} with named points and crossings.
  const fs::path spec =
      fs::temp_directory_path() / ("ck-plan-" + std::to_string(getpid()) + ".yaml");
  std::ofstream(spec)
      << "target: [" << bin << "/kvd, --data-dir, \"{data_dir}\", --socket, "
      << "\"{run_dir}/kvd.sock\"]\nreplicas: 3\nworkload: \"" << bin
      << "/kvd-workload --socket {run_dir:2}/kvd.sock --ledger {ledger} --count "
         "10\"\ncheck_online: [\""
      << bin << "/kvd-verify --socket {run_dir:2}/kvd.sock --ledger {ledger}\"]\n"
      << "faults:\n  - crash_points: {replica: 2, points: [wal.append.after_header], "
         "crossings: [3], phase: run}\n";
  auto m = test::run_cli({kCli, "matrix", spec.string()}, 2min, {"KVD_BUG=torn-tail-fatal"});
  EXPECT_EQ(m.code(), 1) << m.output;
  EXPECT_NE(m.output.find("wal_append_after_header_at_3_kill_r2 [not_ready]"), std::string::npos)
      << m.output;
  EXPECT_NE(m.output.find("--plan-replica 2"), std::string::npos) << m.output;
  m = test::run_cli({kCli, "matrix", spec.string()});
  EXPECT_EQ(m.code(), 0) << m.output;
  fs::remove(spec);
  EXPECT_TRUE(test::no_children_left());
}

// Three kvd replicas with the workload and checks on replica 2, as above.
std::vector<std::string> kvd_group(const std::string& bin, std::vector<std::string> head) {
  head.insert(head.end(),
              {"--replicas", "3", "--workload",
               bin + "/kvd-workload --socket {run_dir:2}/kvd.sock --ledger {ledger} --count 10",
               "--", bin + "/kvd", "--data-dir", "{data_dir}", "--socket", "{run_dir}/kvd.sock"});
  return head;
}

// --plan-on restart with --plan-replica: replica 2 is SIGKILLed after the workload and its
// restart is armed, so the point fires inside its recovery while replicas 0 and 1 serve. The
// correct kvd recovers from a crash in its recovery compaction; recovery-not-idempotent (it trims
// the WAL before the compaction is durable) loses acknowledged writes; a crossing recovery never
// reaches is fault_not_reached.
TEST(Replicas, RecoveryPlanInOneReplica) {
  const std::string bin = fs::path(CRASHKIT_KVD).parent_path().string();
  auto cell = [&](const char* plan) {
    auto argv = kvd_group(
        bin, {kCli, "run", "--plan", plan, "--plan-on", "restart", "--plan-replica", "2", "--check",
              bin + "/kvd-verify --socket {run_dir:2}/kvd.sock --ledger {ledger}"});
    return argv;
  };
  auto ok = test::run_cli(cell("recovery.compact@1=kill"));
  EXPECT_EQ(ok.code(), 0) << ok.output;
  EXPECT_NE(ok.output.find("fired in replica 2 of 3 during its recovery"), std::string::npos)
      << ok.output;
  EXPECT_NE(ok.output.find("crash inside replica 2's recovery fired"), std::string::npos)
      << ok.output;
  auto lost =
      test::run_cli(cell("recovery.compact@1=kill"), 2min, {"KVD_BUG=recovery-not-idempotent"});
  EXPECT_EQ(lost.code(), 1) << lost.output;
  EXPECT_NE(lost.output.find("violation: cycle 0: online check"), std::string::npos) << lost.output;
  EXPECT_NE(lost.output.find("acknowledged data lost"), std::string::npos) << lost.output;
  auto missed = test::run_cli(cell("recovery.replay.record@50=kill"));
  EXPECT_EQ(missed.code(), 0) << missed.output;
  EXPECT_NE(missed.output.find("never fired in replica 2's recovery"), std::string::npos)
      << missed.output;
  EXPECT_TRUE(test::no_children_left());
}

// Discovery in one replica: `crashkit discover --replicas 3 --replica 2` counts replica 2's
// crossings (its workload, then its restart after a SIGKILL), and a matrix's
// `crash_points: {replica: 2, points: all, phase: recovery}` lists one cell per crossing it
// found. The correct kvd passes every cell; recovery-not-idempotent fails the compaction's.
TEST(Replicas, DiscoveryInOneReplicaListsItsCells) {
  const std::string bin = fs::path(CRASHKIT_KVD).parent_path().string();
  auto d = test::run_cli(kvd_group(bin, {kCli, "discover", "--json", "-q", "--replica", "2"}));
  ASSERT_EQ(d.code(), 0) << d.output;
  EXPECT_NE(d.output.find("\"wal.append.before\": {\n    \"recovery\": 0,\n    \"run\": 10"),
            std::string::npos)
      << d.output;
  EXPECT_NE(d.output.find("\"recovery.compact\": {\n    \"recovery\": 1,"), std::string::npos)
      << d.output;
  auto unnamed = test::run_cli(kvd_group(bin, {kCli, "discover"}));
  EXPECT_EQ(unnamed.code(), 2) << unnamed.output;
  EXPECT_NE(unnamed.output.find("name it (--replica I)"), std::string::npos) << unnamed.output;

  const fs::path spec =
      fs::temp_directory_path() / ("ck-discover-" + std::to_string(getpid()) + ".yaml");
  auto write_spec = [&](const std::string& replica) {
    std::ofstream(spec) << "target: [" << bin << "/kvd, --data-dir, \"{data_dir}\", --socket, "
                        << "\"{run_dir}/kvd.sock\"]\nreplicas: 3\nworkload: \"" << bin
                        << "/kvd-workload --socket {run_dir:2}/kvd.sock --ledger {ledger} --count "
                           "10\"\ncheck_online: [\""
                        << bin << "/kvd-verify --socket {run_dir:2}/kvd.sock --ledger {ledger}\"]\n"
                        << "faults:\n  - crash_points: {" << replica
                        << "points: all, phase: recovery}\n";
  };
  write_spec("replica: 2, ");
  auto m = test::run_cli({kCli, "matrix", spec.string()});
  EXPECT_EQ(m.code(), 0) << m.output;
  EXPECT_NE(m.output.find("recovery_recovery_compact_at_1_kill_r2: pass"), std::string::npos)
      << m.output;
  EXPECT_NE(m.output.find("recovery_recovery_replay_record_at_2_kill_r2: pass"), std::string::npos)
      << m.output;
  m = test::run_cli({kCli, "matrix", spec.string()}, 2min, {"KVD_BUG=recovery-not-idempotent"});
  EXPECT_EQ(m.code(), 1) << m.output;
  EXPECT_NE(m.output.find("recovery_recovery_compact_at_1_kill_r2 [violation]"), std::string::npos)
      << m.output;
  EXPECT_NE(m.output.find("--plan-on restart --replicas 3 --plan-replica 2"), std::string::npos)
      << m.output;
  write_spec("");
  m = test::run_cli({kCli, "matrix", spec.string()});
  EXPECT_EQ(m.code(), 2) << m.output;
  EXPECT_NE(m.output.find(":6:"), std::string::npos) << m.output;
  EXPECT_NE(m.output.find("name it (replica: I)"), std::string::npos) << m.output;
  fs::remove(spec);
  EXPECT_TRUE(test::no_children_left());
}

}  // namespace
}  // namespace crashkit
