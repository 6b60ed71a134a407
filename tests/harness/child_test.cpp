// Child: spawning, exit statuses, errors, signals, process groups and reaping.
#include "crashkit/harness/child.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "../support/process_checks.hpp"
#include "../support/shell_spawn.hpp"
#include "crashkit/harness/containment.hpp"
#include "crashkit/harness/output_capture.hpp"
#include "crashkit/harness/placeholders.hpp"

namespace crashkit {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

using test::sh;

// Reads one line the child wrote to a pipe: a blocking read, so no polling.
std::string read_line(int fd) {
  std::string line;
  char c;
  while (read(fd, &c, 1) == 1 && c != '\n') line += c;
  return line;
}

TEST(Child, ReportsExitCodesAndSignals) {
  auto ok = Child::spawn(sh("exit 0"));
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_TRUE(ok->wait().success());
  auto three = Child::spawn(sh("exit 3"));
  ASSERT_TRUE(three);
  EXPECT_TRUE(three->wait().exited_with(3));
  auto segv = Child::spawn(sh("kill -SEGV $$"));
  ASSERT_TRUE(segv);
  auto st = segv->wait();
  EXPECT_TRUE(st.killed_by(SIGSEGV)) << st.describe();
  EXPECT_TRUE(test::no_children_left());
}

TEST(Child, MissingOrNonExecutableTargetIsAUsageError) {
  auto missing = Child::spawn({.argv = {"/definitely/not/here"}});
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().kind, ErrorKind::usage);
  EXPECT_NE(missing.error().message.find("/definitely/not/here"), std::string::npos);

  auto not_in_path = Child::spawn({.argv = {"crashkit-no-such-binary"}});
  ASSERT_FALSE(not_in_path);
  EXPECT_NE(not_in_path.error().message.find("not found in PATH"), std::string::npos);

  auto file = fs::temp_directory_path() / ("ck-noexec-" + std::to_string(getpid()));
  std::ofstream(file) << "#!/bin/sh\n";
  chmod(file.c_str(), 0644);
  auto noexec = Child::spawn({.argv = {file.string()}});
  ASSERT_FALSE(noexec);
  EXPECT_NE(noexec.error().message.find("chmod +x"), std::string::npos);
  fs::remove(file);
  EXPECT_TRUE(test::no_children_left());
}

TEST(Child, ExecFailureIsReportedWithStageNotAsADeadDaemon) {
  auto file = fs::temp_directory_path() / ("ck-badexec-" + std::to_string(getpid()));
  std::ofstream(file) << "\x7f"
                         "ELFgarbage";
  chmod(file.c_str(), 0755);
  auto r = Child::spawn({.argv = {file.string()}});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("execve failed"), std::string::npos) << r.error().message;
  fs::remove(file);
  EXPECT_TRUE(test::no_children_left());  // the failed vfork child was reaped
}

TEST(Child, BadWorkingDirectoryNamesTheStage) {
  auto o = sh("exit 0");
  o.cwd = "/nonexistent-cwd";
  auto r = Child::spawn(o);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("chdir"), std::string::npos);
}

TEST(Child, LeadsItsOwnProcessGroupAndHasADeathSignal) {
  auto cap = OutputCapture::open(fs::temp_directory_path() / "ck-child-grp.log", 1 << 20);
  ASSERT_TRUE(cap);
  auto o =
      // awk reads its own mask, exec'd straight from the shell: the shell blocks every signal
      // around each fork, so reading the shell's mask from another process races with that.
      sh("ps -o pgid= -p $$; exec awk '/^SigBlk/ {print $2}' /proc/self/status");
  o.stdout_fd = cap->write_fd();
  auto c = Child::spawn(o);
  cap->close_write_end();
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->wait().success());
  std::string out = cap->finish();
  EXPECT_NE(out.find(std::to_string(c->pid())), std::string::npos) << out;  // pgid == pid
  EXPECT_NE(out.find("0000000000000000"), std::string::npos) << out;        // mask reset
  std::error_code ec;
  fs::remove(cap->file(), ec);
}

TEST(Child, TerminateOrKillEscalatesWhenSigtermIsIgnored) {
  auto polite = Child::spawn(sh("exec sleep 30"));
  ASSERT_TRUE(polite);
  auto s1 = polite->terminate_or_kill(5s);
  EXPECT_FALSE(s1.escalated);
  EXPECT_TRUE(s1.status.killed_by(SIGTERM));

  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  auto o = sh("trap '' TERM; echo trapped; while :; do sleep 1; done");
  o.stdout_fd = p[1];
  auto stubborn = Child::spawn(o);
  close(p[1]);
  ASSERT_TRUE(stubborn);
  ASSERT_EQ(read_line(p[0]), "trapped");  // SIGTERM only after the trap is in place
  close(p[0]);
  auto s2 = stubborn->terminate_or_kill(200ms);
  EXPECT_TRUE(s2.escalated);
  EXPECT_TRUE(s2.status.killed_by(SIGKILL));
  EXPECT_TRUE(test::no_children_left());
}

TEST(Child, DestructorKillsTheWholeGroupAndReaps) {
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  pid_t leader = 0;
  pid_t grandchild = 0;
  {
    auto o = sh("sleep 60 & echo $!; wait");
    o.stdout_fd = p[1];
    auto c = Child::spawn(o);
    close(p[1]);
    ASSERT_TRUE(c);
    leader = c->pid();
    grandchild = std::stoi(read_line(p[0]));
    ASSERT_GT(grandchild, 0);
    EXPECT_FALSE(test::process_gone(grandchild));
  }
  close(p[0]);
  EXPECT_TRUE(test::process_gone(leader));
  EXPECT_TRUE(test::process_gone(grandchild));
  EXPECT_TRUE(test::no_children_left());
}

TEST(Child, WaitForTimesOutWhileRunning) {
  auto c = Child::spawn(sh("exec sleep 30"));
  ASSERT_TRUE(c);
  EXPECT_FALSE(c->wait_for(20ms).has_value());
  EXPECT_FALSE(c->try_wait().has_value());
  EXPECT_TRUE(c->kill_and_reap().killed_by(SIGKILL));
}

TEST(Child, DropsPrivilegesToAnotherUser) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to switch users";
  auto nobody = lookup_user("nobody");
  ASSERT_TRUE(nobody) << nobody.error().message;
  auto cap = OutputCapture::open(fs::temp_directory_path() / "ck-child-user.log", 1 << 20);
  ASSERT_TRUE(cap);
  auto o = sh("id -u; id -g");
  o.user = *nobody;
  o.stdout_fd = cap->write_fd();
  auto c = Child::spawn(o);
  cap->close_write_end();
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_TRUE(c->wait().success());
  EXPECT_NE(cap->finish().find(std::to_string(nobody->uid)), std::string::npos);
  std::error_code ec;
  fs::remove(cap->file(), ec);
}

TEST(Child, UnknownUserIsAUsageError) {
  auto u = lookup_user("crashkit-no-such-user");
  ASSERT_FALSE(u);
  EXPECT_EQ(u.error().kind, ErrorKind::usage);
}

TEST(Child, ThousandSpawnKillCyclesLeakNothing) {
  // The first spawn opens what lives as long as the process (/dev/null for unset stdio);
  // nothing may grow after it.
  Child::spawn(sh("exit 0"))->wait();
  int before = test::open_fd_count();
  for (int i = 0; i < 1000; ++i) {
    auto c = Child::spawn(sh("exec sleep 30"));
    ASSERT_TRUE(c) << c.error().message;
    c->kill_and_reap();
  }
  EXPECT_EQ(test::open_fd_count(), before);
  EXPECT_TRUE(test::no_children_left());
}

// --- Children started in a containment's cgroup (skipped where crashkit may not create one) ---

bool cgroup_mode() {
  return Containment::process_mode() == Containment::Mode::cgroup;
}

// The cgroup v2 path (the "0::" line of /proc/PID/cgroup) of a process.
std::string cgroup_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cgroup");
  std::string line, last;
  while (std::getline(in, line))
    if (line.rfind("0::", 0) == 0) last = line.substr(3);
  return last;
}

// Spawns `script` in `box` with its stdout on a pipe; returns the child and the read end.
std::pair<Child, int> spawn_in(const Containment& box, const std::string& script) {
  int p[2];
  EXPECT_EQ(pipe2(p, O_CLOEXEC), 0);
  SpawnOptions o = sh(script);
  o.containment = &box;
  o.stdout_fd = p[1];
  auto c = Child::spawn(o);
  close(p[1]);
  EXPECT_TRUE(c) << c.error().message;
  return {std::move(*c), p[0]};
}

TEST(ChildInCgroup, StartsInsideTheContainmentsCgroup) {
  if (!cgroup_mode()) GTEST_SKIP() << "no cgroup v2 directory crashkit may create here";
  Containment box = Containment::create();
  auto [child, out] = spawn_in(box, "echo started; exec sleep 30");
  EXPECT_EQ(read_line(out), "started");
  const std::string dir = box.describe().substr(std::string("cgroup ").size());
  const std::string in = cgroup_of(child.pid());
  ASSERT_FALSE(in.empty());
  EXPECT_TRUE(dir.size() >= in.size() && dir.compare(dir.size() - in.size(), in.size(), in) == 0)
      << "child's cgroup " << in << ", containment " << dir;
  EXPECT_EQ(box.kill_all({child.pid()}), 0);
  EXPECT_EQ(child.wait().describe(), "killed by SIGKILL");
  close(out);
}

// Regression: with cgroup.kill, kernels with kill sequence numbers SIGKILL every child later
// created in that cgroup by clone3(CLONE_INTO_CGROUP), so the second start of a daemon died at
// birth. Each start must live, and each kill_all must end it and its helpers.
TEST(ChildInCgroup, EveryStartAfterAKillLives) {
  if (!cgroup_mode()) GTEST_SKIP() << "no cgroup v2 directory crashkit may create here";
  Containment box = Containment::create();
  for (int start = 0; start < 5; ++start) {
    auto [child, out] = spawn_in(box, "sleep 30 & echo started; exec sleep 30");
    ASSERT_EQ(read_line(out), "started") << "start " << start << " died before writing";
    EXPECT_FALSE(child.try_wait()) << "start " << start << ": " << child.try_wait()->describe();
    EXPECT_EQ(box.kill_all({child.pid()}), 1) << "start " << start << ": the helper";
    EXPECT_EQ(child.wait().describe(), "killed by SIGKILL");
    close(out);
  }
  EXPECT_TRUE(test::no_children_left());
}

TEST(ChildInCgroup, ExecFailureStillNamesTheStage) {
  if (!cgroup_mode()) GTEST_SKIP() << "no cgroup v2 directory crashkit may create here";
  Containment box = Containment::create();
  SpawnOptions o = sh("exit 0");
  o.containment = &box;
  o.cwd = "/nonexistent-crashkit-dir";
  auto c = Child::spawn(o);
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message.find("chdir failed"), std::string::npos) << c.error().message;
  EXPECT_TRUE(test::no_children_left());
}

TEST(ChildInCgroup, ThousandStartsInOneCgroupLeakNothing) {
  if (!cgroup_mode()) GTEST_SKIP() << "no cgroup v2 directory crashkit may create here";
  Containment box = Containment::create();
  Child::spawn(sh("exit 0"))->wait();
  const int before = test::open_fd_count();
  for (int i = 0; i < 1000; ++i) {
    SpawnOptions o = sh("exec sleep 30");
    o.containment = &box;
    auto c = Child::spawn(o);
    ASSERT_TRUE(c) << c.error().message;
    c->kill_and_reap();
    ASSERT_EQ(box.kill_all(), 0);
  }
  EXPECT_EQ(test::open_fd_count(), before);
  EXPECT_TRUE(test::no_children_left());
}

}  // namespace
}  // namespace crashkit
