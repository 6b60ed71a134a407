// `crashkit run` end to end against the notify fixture: every outcome and every error path,
// with the exit codes of DESIGN.md section 4.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <pwd.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "../support/cli_runner.hpp"
#include "../support/process_checks.hpp"
#include "../support/shared_bin.hpp"

namespace crashkit {
namespace {

const std::string kCli = CRASHKIT_CLI;
const std::string kFixture = CRASHKIT_NOTIFY_FIXTURE;

test::CliRun run(std::vector<std::string> options, std::vector<std::string> target) {
  std::vector<std::string> argv{kCli, "run"};
  argv.insert(argv.end(), options.begin(), options.end());
  argv.push_back("--");
  argv.insert(argv.end(), target.begin(), target.end());
  return test::run_cli(argv);
}

TEST(CliRun, CleanDaemonPassesSigkillAndSigtermCycles) {
  for (const char* fault : {"sigkill", "sigterm", "sigkill-after=20ms"}) {
    auto r =
        run({"--fault", fault, "--cycles", "3"}, {kFixture, "--mode", "ready", "--children", "2"});
    EXPECT_EQ(r.code(), 0) << fault << "\n" << r.output;
    EXPECT_NE(r.output.find("pass: 3 cycle(s)"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("recovery (restart -> READY)"), std::string::npos) << r.output;
  }
  EXPECT_TRUE(test::no_children_left());
}

// Every start writes its own target.CYCLE.START.stdout/.stderr, whether the pipes are kept
// across starts (a cgroup containment) or made per start (the marker).
TEST(CliRun, EachStartKeepsItsOwnOutputFiles) {
  namespace fs = std::filesystem;
  const fs::path base = fs::temp_directory_path() / ("ck-starts-" + std::to_string(getpid()));
  for (const char* mode : {"", "marker"}) {
    fs::remove_all(base);
    std::vector<std::string> env;
    if (*mode != '\0') env.push_back(std::string("CRASHKIT_CONTAINMENT=") + mode);
    auto r = test::run_cli({kCli, "run", "--fault", "sigkill", "--cycles", "3", "--keep",
                            "--run-dir", base.string(), "--", "/bin/sh", "-c",
                            "echo out $CRASHKIT_CYCLE; echo err $CRASHKIT_CYCLE >&2; exec " +
                                kFixture + " --mode ready"},
                           std::chrono::minutes(2), env);
    ASSERT_EQ(r.code(), 0) << mode << "\n" << r.output;
    for (auto [cycle, start] : {std::pair{0, 0}, {1, 1}, {2, 1}, {3, 1}}) {
      const fs::path prefix = base / "artifacts" / fmt::format("target.{}.{}", cycle, start);
      std::ifstream out(prefix.string() + ".stdout"), err(prefix.string() + ".stderr");
      std::string o((std::istreambuf_iterator<char>(out)), {});
      std::string e((std::istreambuf_iterator<char>(err)), {});
      EXPECT_EQ(o, fmt::format("out {}\n", cycle)) << mode << " " << prefix;
      EXPECT_EQ(e, fmt::format("err {}\n", cycle)) << mode << " " << prefix;
    }
  }
  fs::remove_all(base);
  EXPECT_TRUE(test::no_children_left());
}

// A restart reuses the last plain start's argv and environment with CRASHKIT_CYCLE changed
// (the test above checks that); a target that names {cycle} in its arguments is built anew for
// each start, so each sees its own cycle there too.
TEST(CliRun, ATargetNamingItsCycleSeesEachCycle) {
  namespace fs = std::filesystem;
  const fs::path base = fs::temp_directory_path() / ("ck-cycle-arg-" + std::to_string(getpid()));
  fs::remove_all(base);
  auto r = test::run_cli(
      {kCli, "run", "--fault", "sigkill", "--cycles", "2", "--keep", "--run-dir", base.string(),
       "--", "/bin/sh", "-c", "echo {cycle} $CRASHKIT_CYCLE; exec " + kFixture + " --mode ready"},
      std::chrono::minutes(2));
  ASSERT_EQ(r.code(), 0) << r.output;
  for (auto [cycle, start] : {std::pair{0, 0}, {1, 1}, {2, 1}}) {
    std::ifstream out(base / "artifacts" / fmt::format("target.{}.{}.stdout", cycle, start));
    std::string o((std::istreambuf_iterator<char>(out)), {});
    EXPECT_EQ(o, fmt::format("{0} {0}\n", cycle)) << cycle;
  }
  fs::remove_all(base);
}

TEST(CliRun, NeverReadyIsNotReady) {
  auto r = run({"--ready-timeout", "300ms"}, {kFixture, "--mode", "never-ready"});
  EXPECT_EQ(r.code(), 1) << r.output;
  EXPECT_NE(r.output.find("not_ready: before any fault: no READY=1 within 300ms"),
            std::string::npos)
      << r.output;
}

TEST(CliRun, ExitBeforeReadyShowsStatusAndStderr) {
  auto r = run({}, {kFixture, "--mode", "exit-before-ready"});
  EXPECT_EQ(r.code(), 1) << r.output;
  EXPECT_NE(r.output.find("not_ready: before any fault: exited before READY (exited with code 3)"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("cannot open data directory"), std::string::npos) << r.output;
}

// The cause comes first and a usage dump or "Aborting" last (etcd's bad URL, mariadbd as root):
// the quote is the first line that reads as an error, then the last one, and where the rest is,
// even when the dump is longer than the tail kept in memory.
TEST(CliRun, ExitBeforeReadyQuotesTheCauseNotJustTheLastLine) {
  auto r = run({}, {"/bin/sh", "-c",
                    "echo starting >&2; echo 'invalid value \"x\" for --listen-urls' >&2; "
                    "for i in $(seq 1 200); do echo \"  --option$i  what option $i does\" >&2; "
                    "done; echo 'Run the proxy.' >&2; exit 2"});
  EXPECT_EQ(r.code(), 1) << r.output;
  EXPECT_NE(r.output.find("stderr: invalid value \"x\" for --listen-urls ... Run the proxy. "
                          "(all of it: "),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("target.0.0.stderr)"), std::string::npos) << r.output;
}

// --ready-when: nothing accepting is not_ready, naming the probe and its last failure; a daemon
// that exits first is not_ready too, noticed at once; a malformed probe is a usage error.
TEST(CliRun, ReadyWhenWaitsForItsProbe) {
  auto never = run({"--ready-when", "unix:{run_dir}/nothing.sock", "--ready-timeout", "300ms"},
                   {"/bin/sleep", "100"});
  EXPECT_EQ(never.code(), 1) << never.output;
  EXPECT_NE(
      never.output.find("/nothing.sock within 300ms (last attempt: No such file or directory)"),
      std::string::npos)
      << never.output;
  EXPECT_NE(never.output.find("not_ready: before any fault: not ready by --ready-when unix:/"),
            std::string::npos)
      << never.output;
  auto cmd = run({"--ready-when", "cmd:test -e {run_dir}/up", "--ready-timeout", "10s"},
                 {"/bin/sh", "-c", "touch up; exec sleep 100"});
  EXPECT_EQ(cmd.code(), 0) << cmd.output;
  auto dies = run({"--ready-when", "tcp:127.0.0.1:9", "--ready-timeout", "60s"},
                  {"/bin/sh", "-c", "echo 'fatal: no config' >&2; exit 3"});
  EXPECT_EQ(dies.code(), 1) << dies.output;
  EXPECT_NE(dies.output.find("not_ready: before any fault: exited before READY (exited with code "
                             "3); stderr: fatal: no config"),
            std::string::npos)
      << dies.output;
  for (const char* bad : {"foo:bar", "tcp:localhost", "tcp:h:70000", "unix:", "cmd"}) {
    auto r = run({"--ready-when", bad}, {"/bin/true"});
    EXPECT_EQ(r.code(), 2) << bad << "\n" << r.output;
    EXPECT_NE(r.output.find("--ready-when"), std::string::npos) << r.output;
  }
}

TEST(CliRun, IgnoringSigtermIsAFinding) {
  auto r = run({"--fault", "sigterm", "--stop-timeout", "300ms"},
               {kFixture, "--mode", "ignore-sigterm"});
  EXPECT_EQ(r.code(), 1) << r.output;
  EXPECT_NE(r.output.find("unexpected_exit: cycle 0: SIGTERM ignored for 300ms"), std::string::npos)
      << r.output;
}

TEST(CliRun, WrongExitCodeOnSigtermIsAFinding) {
  auto r = run({"--fault", "sigterm"}, {kFixture, "--mode", "ready", "--term-exit", "7"});
  EXPECT_EQ(r.code(), 1) << r.output;
  EXPECT_NE(r.output.find("on SIGTERM the daemon exited with code 7 (a clean stop is exit 0 or "
                          "death by SIGHUP, SIGINT, SIGTERM or SIGPIPE"),
            std::string::npos)
      << r.output;
}

// systemd's clean stop: dying by the stop signal is clean (etcd 3.4 re-raises SIGTERM after a
// clean shutdown; a daemon without a handler dies by it), and so is what SuccessExitStatus= adds.
TEST(CliRun, CleanStopFollowsSystemd) {
  auto reraised = run({"--fault", "sigterm", "--cycles", "2"}, {kFixture, "--reraise"});
  EXPECT_EQ(reraised.code(), 0) << reraised.output;
  auto listed = run({"--fault", "sigterm", "--success-exit-status", "7 SIGUSR1"},
                    {kFixture, "--term-exit", "7"});
  EXPECT_EQ(listed.code(), 0) << listed.output;
  auto other =
      run({"--fault", "sigterm", "--success-exit-status", "8"}, {kFixture, "--term-exit", "7"});
  EXPECT_EQ(other.code(), 1) << other.output;
  EXPECT_NE(other.output.find("exited with code 7 (a clean stop is exit 0 or death by SIGHUP, "
                              "SIGINT, SIGTERM or SIGPIPE, or 8;"),
            std::string::npos)
      << other.output;
}

// --stop-signal is systemd's KillSignal=: the signal the clean stop sends.
TEST(CliRun, StopSignalIsTheOneSent) {
  const std::vector<std::string> daemon{kFixture, "--term-exit", "1", "--int-exit", "0"};
  auto term = run({"--fault", "sigterm"}, daemon);
  EXPECT_EQ(term.code(), 1) << term.output;
  EXPECT_NE(term.output.find("on SIGTERM the daemon exited with code 1"), std::string::npos)
      << term.output;
  auto intr = run({"--fault", "sigterm", "--stop-signal", "SIGINT"}, daemon);
  EXPECT_EQ(intr.code(), 0) << intr.output;
}

// --user gives what a login gives (HOME, USER, LOGNAME), and TMPDIR the run's scratch dir, not
// root's: mariadb-install-db under --user mysql failed on root's private TMPDIR.
TEST(CliRun, UserGetsItsOwnHomeNamesAndTmpdir) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to switch users";
  const passwd* pw = getpwnam("nobody");
  if (pw == nullptr) GTEST_SKIP() << "no user 'nobody'";
  const std::string want = "test \"$USER $LOGNAME $HOME $TMPDIR\" = \"nobody nobody " +
                           std::string(pw->pw_dir) + " {scratch}\" || exit 1";
  // The run dir and the daemon where nobody can reach them, whatever the build tree's mode.
  const std::string fixture = test::shared_copy(kFixture);
  const std::string run_dir = "/tmp/ck-user-env-" + std::to_string(getpid());
  auto r =
      run({"--user", "nobody", "--run-dir", run_dir + "/a", "--workload", want, "--check", want},
          {fixture});
  EXPECT_EQ(r.code(), 0) << r.output;
  auto wrong = run({"--user", "nobody", "--run-dir", run_dir + "/b", "--check",
                    "test \"$HOME\" = /root || exit 1"},
                   {fixture});
  EXPECT_EQ(wrong.code(), 1) << wrong.output;
  std::filesystem::remove_all(run_dir);
}

TEST(CliRun, BadStopSignalOrSuccessStatusIsAUsageError) {
  for (auto opts : std::vector<std::vector<std::string>>{{"--stop-signal", "SIGFOO"},
                                                         {"--stop-signal", "0"},
                                                         {"--success-exit-status", "256"},
                                                         {"--success-exit-status", "7 bogus"},
                                                         {"--success-exit-status", " "}}) {
    auto r = run(opts, {kFixture});
    EXPECT_EQ(r.code(), 2) << opts[0] << " " << opts[1] << "\n" << r.output;
    EXPECT_NE(r.output.find(opts[0]), std::string::npos) << r.output;
  }
}

// The checker contract: 0 holds, 1 violated, anything else could not judge (harness_error,
// exit 3), never data loss.
TEST(CliRun, ACheckThatCannotJudgeIsAHarnessError) {
  for (const std::string check :
       {"no-such-checker-xyz {data_dir}", "exit 2", "kill -9 $$", "test \"\" -eq 100"}) {
    auto r = run({"--check", check}, {kFixture});
    EXPECT_EQ(r.code(), 3) << check << "\n" << r.output;
    EXPECT_NE(r.output.find("harness_error: cycle 0: online check '"), std::string::npos)
        << r.output;
    EXPECT_NE(r.output.find("could not judge"), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find("{data_dir}"), std::string::npos) << "placeholders expanded\n"
                                                              << r.output;
  }
  auto violated = run({"--check", "exit 1"}, {kFixture});
  EXPECT_EQ(violated.code(), 1) << violated.output;
  EXPECT_NE(violated.output.find("violation: cycle 0: online check 'exit 1'"), std::string::npos)
      << violated.output;
}

TEST(CliRun, DaemonDyingDuringWorkloadIsUnexpectedExit) {
  auto r = run({"--workload", "sleep 0.5"}, {kFixture, "--mode", "ready", "--exit-after-ms", "0"});
  EXPECT_EQ(r.code(), 1) << r.output;
  EXPECT_NE(r.output.find("unexpected_exit: cycle 0: daemon died during the workload: exited "
                          "with code 4"),
            std::string::npos)
      << r.output;
}

TEST(CliRun, ForkingDaemonsFollowMainPid) {
  for (const char* mode : {"mainpid-helper", "double-fork"}) {
    for (const char* fault : {"sigkill", "sigterm"}) {
      auto r =
          run({"--fault", fault, "--cycles", "2"}, {kFixture, "--mode", mode, "--children", "1"});
      EXPECT_EQ(r.code(), 0) << mode << " " << fault << "\n" << r.output;
    }
  }
  EXPECT_TRUE(test::no_children_left());
}

TEST(CliRun, HelperWithoutMainPidIsHeardOnlyWithAccessAll) {
  auto main_only = run({"--ready-timeout", "300ms"}, {kFixture, "--mode", "helper-ready"});
  EXPECT_EQ(main_only.code(), 1) << main_only.output;
  EXPECT_NE(main_only.output.find("foreign sender 1"), std::string::npos) << main_only.output;
  auto all = run({"--notify-access", "all"}, {kFixture, "--mode", "helper-ready"});
  EXPECT_EQ(all.code(), 0) << all.output;
}

TEST(CliRun, GarbageDatagramsAreCountedNotFatal) {
  auto r = run({}, {kFixture, "--mode", "garbage"});
  EXPECT_EQ(r.code(), 0) << r.output;
  // 2 starts x (NUL, oversized, 2 malformed, 1 foreign)
  EXPECT_NE(
      r.output.find("10 rejected (no credentials 0, oversized 2, malformed 6, foreign sender 2)"),
      std::string::npos)
      << r.output;
}

TEST(CliRun, WorkloadChecksAndPlaceholders) {
  auto r = run({"--cycles", "2", "--workload", "echo {cycle} >> {data_dir}/log", "--check-offline",
                "test -s {data_dir}/log", "--check",
                "test \"$(wc -l < {data_dir}/log)\" -eq $(({cycle} + 1))"},
               {kFixture, "--mode", "ready"});
  EXPECT_EQ(r.code(), 0) << r.output;
  auto bad = run({"--workload", "true", "--check", "echo acked key k7 missing; exit 1"},
                 {kFixture, "--mode", "ready"});
  EXPECT_EQ(bad.code(), 1) << bad.output;
  EXPECT_NE(bad.output.find("violation: cycle 0: online check 'echo acked key k7 missing; exit 1' "
                            "exited with code 1: acked key k7 missing"),
            std::string::npos)
      << bad.output;
  EXPECT_NE(bad.output.find("run dir kept:"), std::string::npos);
}

// --run-dir creates missing parents; a run dir that is removed takes those parents with it,
// never a directory that was there before, and a kept one keeps them.
TEST(CliRun, RunDirParentsItCreatedGoWithIt) {
  namespace fs = std::filesystem;
  const fs::path base = fs::temp_directory_path() / ("ck-parents-" + std::to_string(getpid()));
  fs::create_directories(base / "existing");
  auto passed =
      run({"--run-dir", (base / "existing/a/b/run/").string()}, {kFixture, "--mode", "ready"});
  EXPECT_EQ(passed.code(), 0) << passed.output;
  EXPECT_TRUE(fs::is_directory(base / "existing"));
  EXPECT_FALSE(fs::exists(base / "existing/a")) << passed.output;
  // A parent that gained other content meanwhile stays, with that content.
  auto sibling = run({"--run-dir", (base / "existing/c/run").string(), "--workload",
                      "touch " + (base / "existing/c/other").string()},
                     {kFixture, "--mode", "ready"});
  EXPECT_EQ(sibling.code(), 0) << sibling.output;
  EXPECT_FALSE(fs::exists(base / "existing/c/run")) << sibling.output;
  EXPECT_TRUE(fs::exists(base / "existing/c/other")) << sibling.output;
  auto kept =
      run({"--keep", "--run-dir", (base / "d/run").string()}, {kFixture, "--mode", "ready"});
  EXPECT_EQ(kept.code(), 0) << kept.output;
  EXPECT_TRUE(fs::is_directory(base / "d/run/data")) << kept.output;
  fs::remove_all(base);
}

// The daemon's output that a full disk kept off its artifact is said in the result, one line
// naming the file and the errno. The artifact is a link to /dev/full (every write: ENOSPC).
TEST(CliRun, DaemonOutputLostToAFullDiskIsNoted) {
  namespace fs = std::filesystem;
  const fs::path base = fs::temp_directory_path() / ("ck-full-" + std::to_string(getpid()));
  const fs::path artifact = base / "artifacts/target.0.0.stdout";
  fs::create_directories(artifact.parent_path());
  fs::create_symlink("/dev/full", artifact);
  auto r = run({"--run-dir", base.string()},
               {"/bin/sh", "-c", "echo started; exec " + kFixture + " --mode ready"});
  EXPECT_EQ(r.code(), 0) << r.output;
  auto note = r.output.find("note: captured output lost: " + artifact.string());
  ASSERT_NE(note, std::string::npos) << r.output;
  auto line = r.output.substr(note, r.output.find('\n', note) - note);
  EXPECT_NE(line.find("No space left on device (ENOSPC)"), std::string::npos) << line;
  fs::remove_all(base);
}

TEST(CliRun, FailingWorkloadBeforeAnyFaultIsAHarnessError) {
  auto r = run({"--workload", "exit 9"}, {kFixture, "--mode", "ready"});
  EXPECT_EQ(r.code(), 3) << r.output;
  EXPECT_NE(r.output.find("workload exited with code 9"), std::string::npos) << r.output;
}

TEST(CliRun, UsageErrorsAreOneLineWithExitTwo) {
  struct Case {
    std::vector<std::string> options;
    std::vector<std::string> target;
    std::string message;
  };
  std::vector<Case> cases = {
      {{}, {"/no/such/daemon"}, "target '/no/such/daemon' not found"},
      {{}, {"no-such-daemon-in-path"}, "not found in PATH"},
      {{"--fault", "sigstop"}, {kFixture}, "unknown fault"},
      {{"--ready-timeout", "10"}, {kFixture}, "--ready-timeout: bad duration '10' (missing unit)"},
      {{"--run-dir", "/proc/crashkit"}, {kFixture}, "--run-dir /proc/crashkit: cannot create"},
      {{"--user", "crashkit-no-such-user"}, {kFixture}, "no such user"},
      {{"--notify-access", "some"}, {kFixture}, "--notify-access"},
  };
  for (const auto& c : cases) {
    auto r = run(c.options, c.target);
    EXPECT_EQ(r.code(), 2) << r.output;
    EXPECT_NE(r.output.find(c.message), std::string::npos) << r.output;
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
  }
  auto none = test::run_cli({kCli, "run"});
  EXPECT_EQ(none.code(), 2) << none.output;
}

TEST(CliRun, HelpDocumentsExitCodes) {
  auto r = test::run_cli({kCli, "run", "--help"});
  EXPECT_EQ(r.code(), 0);
  EXPECT_NE(r.output.find("Exit codes: 0 no findings, 1 finding, 2 usage error, 3 harness error"),
            std::string::npos)
      << r.output;
}

}  // namespace
}  // namespace crashkit
