// Descendant containment, end to end through the CLI: whatever a daemon's helpers or a workload's
// background jobs do to leave (setsid, double fork), none survives `crashkit run`, not even when
// the harness itself is SIGKILLed. Survivors are counted by a marker every descendant inherits
// (an environment entry the test gives crashkit), never by name.
//
// Each case runs twice: in a cgroup of its own (skipped where crashkit may not create one) and
// with CRASHKIT_CONTAINMENT=marker, the way used without a delegated cgroup v2 tree.
#include "crashkit/harness/containment.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <tuple>
#include <vector>

#include "../support/cli_runner.hpp"
#include "../support/process_checks.hpp"
#include "process/proc_scan.hpp"

namespace crashkit {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

const std::string kCli = CRASHKIT_CLI;
const std::string kFixture = CRASHKIT_NOTIFY_FIXTURE;
constexpr int kHelpers = 5;

// Live processes whose environment holds `entry` ("KEY=VALUE"); zombies have none.
int count_marked(const std::string& entry) {
  static char dents[8192];
  static char env[64 << 10];
  const std::string needle = entry + '\0';
  int n = 0;
  proc_scan::for_each_pid(
      [&](pid_t p) {
        n += proc_scan::environ_has(p, needle.data(), needle.size(), env, sizeof env);
      },
      dents, sizeof dents);
  return n;
}

// Polls (bounded) until `pred` holds: the processes being counted are not ours to wait for.
template <typename Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = 10s) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    usleep(10'000);
  }
  return true;
}

// Zombies handed to us (a test that spawns is a subreaper) once a SIGKILLed harness is gone.
void reap_orphans() {
  int status = 0;
  while (waitpid(-1, &status, WNOHANG) > 0) {
  }
}

enum class Leaver { setsid_helpers, double_fork_helpers, workload_job };
enum class Scenario { pass, sigterm, three_cycles, harness_killed };

struct Case {
  Leaver leaver;
  Scenario scenario;
  bool marker_mode;
};

std::string name_of(const ::testing::TestParamInfo<Case>& info) {
  const char* l[] = {"SetsidHelpers", "DoubleForkHelpers", "WorkloadJob"};
  const char* s[] = {"Pass", "Sigterm", "ThreeCycles", "HarnessKilled"};
  return std::string(l[static_cast<int>(info.param.leaver)]) +
         s[static_cast<int>(info.param.scenario)] + (info.param.marker_mode ? "Marker" : "Cgroup");
}

class Containment_ : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    if (!GetParam().marker_mode && Containment::process_mode() != Containment::Mode::cgroup)
      GTEST_SKIP() << "no cgroup v2 directory crashkit may create here (root or a delegated "
                      "subtree); the marker cases cover this machine";
  }

  std::vector<std::string> argv() const {
    const Case c = GetParam();
    std::vector<std::string> a{kCli, "run", "-q"};
    if (c.scenario == Scenario::sigterm) a.insert(a.end(), {"--fault", "sigterm"});
    if (c.scenario == Scenario::three_cycles) a.insert(a.end(), {"--cycles", "3"});
    // With the harness SIGKILLed, the workload's last sleep holds the harness mid-cell.
    const bool hold = c.scenario == Scenario::harness_killed;
    if (c.leaver == Leaver::workload_job)
      a.insert(a.end(), {"--workload", hold ? "setsid sleep 1000 & sleep 1000 & sleep 1000"
                                            : "setsid sleep 1000 & sleep 1000 & exit 0"});
    else if (hold)
      a.insert(a.end(), {"--workload", "sleep 1000"});
    a.insert(a.end(), {"--", kFixture, "--children", std::to_string(kHelpers)});
    if (c.leaver != Leaver::workload_job)
      a.insert(a.end(),
               {"--escape", c.leaver == Leaver::setsid_helpers ? "setsid" : "double-fork"});
    return a;
  }
  std::vector<std::string> env() const {
    std::vector<std::string> e{marker_};
    if (GetParam().marker_mode) e.push_back("CRASHKIT_CONTAINMENT=marker");
    return e;
  }

  const std::string marker_ = "CK_CONTAINMENT_TEST=" + std::to_string(getpid()) + "." +
                              ::testing::UnitTest::GetInstance()->current_test_info()->name();
};

TEST_P(Containment_, NoDescendantSurvives) {
  const Case c = GetParam();
  if (c.scenario == Scenario::harness_killed) {
    auto cli = Child::spawn({.argv = argv(), .env = child_environment(env())});
    ASSERT_TRUE(cli) << cli.error().message;
    // The daemon, its helpers and the workload's processes are all up: kill the harness.
    const int up = kHelpers + (c.leaver == Leaver::workload_job ? 5 : 2);
    ASSERT_TRUE(eventually([&] { return count_marked(marker_) >= up; }))
        << count_marked(marker_) << " marked processes";
    cli->signal(SIGKILL);
    cli->wait();
  } else {
    auto r = test::run_cli(argv(), 2min, env());
    EXPECT_EQ(r.code(), 0) << r.output;
    // A clean exit that leaves helpers behind is worth a line; so is a workload's leftover.
    if (c.leaver == Leaver::workload_job)
      EXPECT_NE(r.output.find("outlived the command of workload.0.log; killed"), std::string::npos)
          << r.output;
    else
      EXPECT_NE(r.output.find(std::to_string(kHelpers) +
                              " process(es) outlived the daemon's clean exit; killed"),
                std::string::npos)
          << r.output;
  }
  EXPECT_TRUE(eventually([&] { return count_marked(marker_) == 0; }))
      << count_marked(marker_) << " descendants survived";
  // A SIGKILLed harness hands its sentinel and its dying processes to us; the sentinel exits
  // once it has killed and cleaned up.
  EXPECT_TRUE(eventually([] {
    reap_orphans();
    return test::no_children_left();
  })) << "a process of the run is still our child";
}

std::vector<Case> all_cases() {
  std::vector<Case> out;
  for (bool marker : {false, true})
    for (auto l : {Leaver::setsid_helpers, Leaver::double_fork_helpers, Leaver::workload_job})
      for (auto s :
           {Scenario::pass, Scenario::sigterm, Scenario::three_cycles, Scenario::harness_killed})
        out.push_back({l, s, marker});
  return out;
}

INSTANTIATE_TEST_SUITE_P(Leavers, Containment_, ::testing::ValuesIn(all_cases()), name_of);

// This process's cgroup v2 directory ("" without one): the mount point of cgroup2 joined with
// the path /proc/self/cgroup gives (the mount's root is / where crashkit makes cgroups).
fs::path own_cgroup_dir() {
  std::ifstream cg("/proc/self/cgroup"), mounts("/proc/mounts");
  std::string line, own, dev, at, type;
  while (std::getline(cg, line))
    if (line.rfind("0::", 0) == 0) own = line.substr(3);
  while (mounts >> dev >> at >> type && std::getline(mounts, line))
    if (type == "cgroup2") return fs::path(at + own);
  return {};
}

// A command of the cell that leaves a cgroup directory inside its own (as a crashkit it runs
// does when it is killed): the cell's directories are still removed, not left in the
// harness's cgroup. Found nowhere under the test's cgroup afterwards.
TEST(ContainmentCgroup, DirectoriesACommandMadeInsideTheCellGoWithIt) {
  if (Containment::process_mode() != Containment::Mode::cgroup)
    GTEST_SKIP() << "crashkit may not create cgroups here";
  const fs::path own = own_cgroup_dir();
  ASSERT_FALSE(own.empty());
  const std::string name = "ck-nested-" + std::to_string(getpid());
  auto r = test::run_cli({kCli, "run", "--workload",
                          "mkdir \"$(awk '$3==\"cgroup2\"{print $2; exit}' /proc/mounts)$(sed -n "
                          "'s/^0:://p' /proc/self/cgroup)/" +
                              name + "\"",
                          "--", kFixture, "--mode", "ready"});
  ASSERT_EQ(r.code(), 0) << r.output;
  std::error_code ec;
  int found = 0;
  for (fs::recursive_directory_iterator it(own, ec), end; !ec && it != end; it.increment(ec))
    found += it->path().filename() == name;
  EXPECT_EQ(found, 0) << "a " << name << " directory was left under " << own;
}

}  // namespace
}  // namespace crashkit
