// `crashkit matrix` over the pointd fixture: the cells it expands to, its reports, sharding,
// a planted bug caught, and spec errors with line numbers.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "../support/cli_runner.hpp"

namespace crashkit {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

const std::string kCli = CRASHKIT_CLI;
const std::string kPointd = CRASHKIT_POINTD;
const std::string kSpec = CRASHKIT_SOURCE_DIR "/fixtures/pointd/matrix.yaml";

class MatrixTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("ck-matrix-" + std::to_string(getpid()));
    fs::create_directories(dir_);
    path_env_ = "PATH=" + fs::path(kPointd).parent_path().string() + ":" + getenv("PATH");
  }
  void TearDown() override { fs::remove_all(dir_); }

  test::CliRun matrix(std::vector<std::string> args) {
    std::vector<std::string> argv{kCli, "matrix", "-q"};
    argv.insert(argv.end(), args.begin(), args.end());
    return test::run_cli(argv, 5min, {path_env_});
  }
  nlohmann::json json(const std::string& file) {
    std::ifstream in(dir_ / file);
    return nlohmann::json::parse(in);
  }
  fs::path write(const std::string& name, const std::string& yaml) {
    std::ofstream(dir_ / name) << yaml;
    return dir_ / name;
  }

  fs::path dir_;
  std::string path_env_;
};

TEST_F(MatrixTest, DefaultSpecExpandsToEveryPointAndCrossingAndPasses) {
  auto r = matrix({kSpec, "-j", "2", "--seed", "7", "--json", (dir_ / "m.json").string(), "--junit",
                   (dir_ / "m.xml").string()});
  EXPECT_EQ(r.code(), 0) << r.output;
  auto j = json("m.json");
  // sigterm + sigkill + sigkill-after + 5 append points x 5 + recover.begin (run + recovery)
  // + recover.record x 5 (recovery) + 2 error cells.
  EXPECT_EQ(j["cells"].size(), 3u + 25u + 2u + 5u + 2u) << r.output;
  EXPECT_EQ(j["counts"]["pass"], j["cells"].size());
  EXPECT_EQ(j["seed"], 7);
  std::set<std::string> ids;
  for (const auto& c : j["cells"]) ids.insert(c["id"].get<std::string>());
  for (auto id : {"sigterm", "sigkill", "sigkill_after_1ms", "append_before_at_1_kill",
                  "append_after_fsync_at_5_kill", "recovery_recover_record_at_5_kill",
                  "append_write_at_2_errorenospc"})
    EXPECT_TRUE(ids.count(id)) << id;
  std::ifstream xml(dir_ / "m.xml");
  std::string x((std::istreambuf_iterator<char>(xml)), {});
  EXPECT_NE(x.find("<testsuite name=\"crashkit.matrix\" tests=\"37\" failures=\"0\""),
            std::string::npos);
  EXPECT_EQ(std::count(x.begin(), x.end(), '\n') > 37, true);
}

TEST_F(MatrixTest, ShardsPartitionTheCellsExactly) {
  std::set<std::string> all;
  std::size_t total = 0;
  for (int i = 0; i < 3; ++i) {
    auto file = "shard" + std::to_string(i) + ".json";
    auto r = matrix({kSpec, "-j", "2", "--seed", "7", "--shard", std::to_string(i) + "/3", "--json",
                     (dir_ / file).string()});
    ASSERT_EQ(r.code(), 0) << r.output;
    auto j = json(file);
    EXPECT_EQ(j["cells_total"], 37);
    for (const auto& c : j["cells"]) {
      EXPECT_TRUE(all.insert(c["id"].get<std::string>()).second) << "overlap: " << c["id"];
      ++total;
    }
  }
  EXPECT_EQ(total, 37u);
  EXPECT_EQ(all.size(), 37u);
}

TEST_F(MatrixTest, GtestShardEnvironmentIsHonoured) {
  auto r = test::run_cli({kCli, "matrix", "-q", kSpec, "--json", (dir_ / "g.json").string()}, 5min,
                         {path_env_, "GTEST_SHARD_INDEX=1", "GTEST_TOTAL_SHARDS=4"});
  ASSERT_EQ(r.code(), 0) << r.output;
  auto j = json("g.json");
  EXPECT_EQ(j["cells"].size(), 9u);  // cells 1, 5, 9, ..., 33 of 37
}

TEST_F(MatrixTest, PlantedBugIsCaughtWithAReproLine) {
  std::ifstream in(kSpec);
  std::string yaml((std::istreambuf_iterator<char>(in)), {});
  auto pos = yaml.find("--socket, \"{run_dir}/s\"]");
  yaml.insert(pos + std::string("--socket, \"{run_dir}/s\"").size(), ", --bug, ack-early");
  auto spec = write("bug.yaml", yaml);
  auto r = matrix({spec.string(), "-j", "2", "--seed", "7", "--json", (dir_ / "b.json").string()});
  EXPECT_EQ(r.code(), 1) << r.output;
  auto j = json("b.json");
  EXPECT_GT(j["counts"].value("violation", 0), 0) << r.output;
  EXPECT_NE(r.output.find("repro: crashkit run --plan append.before@"), std::string::npos)
      << r.output;
  // The repro line reproduces the finding on its own.
  for (const auto& c : j["cells"]) {
    if (c["outcome"] != "violation" || c["id"].get<std::string>().rfind("append_before", 0) != 0)
      continue;
    std::string repro = c["repro"];
    auto again = test::run_cli(
        {"/bin/sh", "-c", kCli + repro.substr(std::string("crashkit").size())}, 5min, {path_env_});
    EXPECT_EQ(again.code(), 1) << repro << "\n" << again.output;
    break;
  }
}

TEST_F(MatrixTest, SpecErrorsNameTheLine) {
  auto typo = write("typo.yaml", "target: [pointd, serve]\nfualts: [sigkill]\n");
  auto r = matrix({typo.string()});
  EXPECT_EQ(r.code(), 2) << r.output;
  EXPECT_NE(r.output.find("typo.yaml:2: unknown key 'fualts'"), std::string::npos) << r.output;

  auto type =
      write("type.yaml", "target: [pointd, serve]\nready_timeout: [1, 2]\nfaults: [sigkill]\n");
  r = matrix({type.string()});
  EXPECT_EQ(r.code(), 2);
  EXPECT_NE(r.output.find("type.yaml:2: ready_timeout must be a single value"), std::string::npos)
      << r.output;

  auto dur = write("dur.yaml", "target: [pointd, serve]\nfaults:\n  - sigkill: {after: [10]}\n");
  r = matrix({dur.string()});
  EXPECT_EQ(r.code(), 2);
  EXPECT_NE(r.output.find("dur.yaml:3:"), std::string::npos) << r.output;

  auto action =
      write("act.yaml", "target: [pointd, serve]\nfaults:\n  - crash_points: {action: boom}\n");
  r = matrix({action.string()});
  EXPECT_EQ(r.code(), 2);
  EXPECT_NE(r.output.find("bad action 'boom'"), std::string::npos) << r.output;

  auto syntax = write("syn.yaml", "target: [pointd\n");
  r = matrix({syntax.string()});
  EXPECT_EQ(r.code(), 2);
  EXPECT_NE(r.output.find("YAML syntax error"), std::string::npos) << r.output;

  r = matrix({(dir_ / "missing.yaml").string()});
  EXPECT_EQ(r.code(), 2);
  EXPECT_NE(r.output.find("cannot read the matrix file"), std::string::npos);
}

// stop_signal and success_exit_status are the unit's KillSignal= and SuccessExitStatus=: a
// daemon that exits 1 on SIGTERM and 0 on SIGINT passes its sigterm cell with stop_signal:
// SIGINT, fails it without, and the failing cell's repro line carries what the spec said.
TEST_F(MatrixTest, StopSignalAndSuccessExitStatusKeys) {
  const std::string target = "target: [" + std::string(CRASHKIT_NOTIFY_FIXTURE) +
                             ", --term-exit, \"1\", --int-exit, \"0\"]\nfaults: [sigterm]\n";
  auto with = write("int.yaml", target + "stop_signal: SIGINT\n");
  auto r = matrix({with.string()});
  EXPECT_EQ(r.code(), 0) << r.output;
  auto listed = write("ok.yaml", target + "success_exit_status: [1, SIGUSR1]\n");
  r = matrix({listed.string()});
  EXPECT_EQ(r.code(), 0) << r.output;
  auto without = write("term.yaml", target + "success_exit_status: \"3 SIGUSR2\"\n");
  r = matrix({without.string()});
  EXPECT_EQ(r.code(), 1) << r.output;
  EXPECT_NE(r.output.find("--success-exit-status '3 SIGUSR2'"), std::string::npos) << r.output;
  auto bad = write("bad.yaml", target + "stop_signal: SIGNOPE\n");
  r = matrix({bad.string()});
  EXPECT_EQ(r.code(), 2) << r.output;
  EXPECT_NE(r.output.find("bad.yaml:3: stop_signal 'SIGNOPE': not a signal"), std::string::npos)
      << r.output;
}

// ready_when and before_start in a spec: a daemon without sd_notify passes through its probe,
// the hook runs before each start, and a bad probe names its line.
TEST_F(MatrixTest, ReadyWhenAndBeforeStartKeys) {
  auto ok = write("rw.yaml",
                  "target: [/bin/sh, -c, \"test -e hook-ran && touch up && exec sleep 100\"]\n"
                  "before_start: \"touch hook-ran\"\n"
                  "ready_when: \"cmd:test -e {run_dir}/up\"\n"
                  "faults: [sigkill]\n");
  auto r = matrix({ok.string()});
  EXPECT_EQ(r.code(), 0) << r.output;
  auto bad = write("rwbad.yaml", "target: [/bin/true]\nready_when: \"udp:1\"\nfaults: [sigkill]\n");
  r = matrix({bad.string()});
  EXPECT_EQ(r.code(), 2) << r.output;
  EXPECT_NE(r.output.find("rwbad.yaml:2: ready_when 'udp:1': unknown kind"), std::string::npos)
      << r.output;
}

TEST_F(MatrixTest, UnknownPointInSpecIsAUsageError) {
  std::string yaml =
      "target: [pointd, serve, --data-dir, \"{data_dir}\", --socket, \"{run_dir}/s\"]\n"
      "workload: [pointd, load, --socket, \"{run_dir}/s\", --count, \"2\"]\n"
      "faults:\n  - crash_points: {points: [append.nope], action: kill}\n";
  auto r = matrix({write("u.yaml", yaml).string()});
  EXPECT_EQ(r.code(), 2) << r.output;
  EXPECT_NE(r.output.find("unknown point 'append.nope'"), std::string::npos) << r.output;
}

// A failing cell's run dir whose data/ holds 200000 bytes.
std::string failing_spec_with_big_data() {
  return "target: [" + std::string(CRASHKIT_NOTIFY_FIXTURE) +
         ", --mode, ready]\n"
         "workload: head -c 200000 /dev/zero > {data_dir}/big\n"
         "check_online: [\"exit 1\"]\n"
         "faults: [sigkill]\n";
}

TEST_F(MatrixTest, KeepFailedMovesTheRunDir) {
  auto spec = write("big.yaml", failing_spec_with_big_data());
  auto r = matrix({"--keep-failed", (dir_ / "kept").string(), spec.string()});
  EXPECT_EQ(r.code(), 1) << r.output;
  EXPECT_EQ(fs::file_size(dir_ / "kept/sigkill/data/big"), 200000u) << r.output;
  EXPECT_NE(r.output.find("artifacts: " + (dir_ / "kept/sigkill").string() + "\n"),
            std::string::npos)
      << r.output;
}

// --keep-failed onto another file system: the rename fails (EXDEV) and the run dir is copied.
// When the copy fails too (ENOSPC), the run dir, the only evidence, must stay where it was, said
// in one line that the summary agrees with. The other file system is a tmpfs mounted in a
// private mount namespace, so nothing outside this test sees it; the shell reports what the
// copy holds before the namespace goes.
TEST_F(MatrixTest, KeepFailedOntoAnotherFileSystemCopiesOrKeepsTheRunDir) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root: mounts a tmpfs in a private mount namespace";
  auto probe = test::run_cli({"unshare", "--mount", "--propagation", "private", "true"});
  if (probe.code() != 0) GTEST_SKIP() << "no private mount namespace here: " << probe.output;
  auto spec = write("full.yaml", failing_spec_with_big_data());
  const fs::path mnt = dir_ / "other-fs";
  fs::create_directories(mnt);
  auto keep_failed_onto_tmpfs = [&](const std::string& size) {
    return test::run_cli({"unshare", "--mount", "--propagation", "private", "sh", "-c",
                          "mount -t tmpfs -o size=$4 crashkit-test \"$1\" || exit 99; "
                          "\"$2\" matrix -q --keep-failed \"$1\" \"$3\"; code=$?; "
                          "test -f \"$1/sigkill/data/big\" && echo copied $(wc -c < "
                          "\"$1/sigkill/data/big\"); exit $code",
                          "sh", mnt.string(), kCli, spec.string(), size});
  };

  auto roomy = keep_failed_onto_tmpfs("4m");
  EXPECT_EQ(roomy.code(), 1) << roomy.output;
  EXPECT_NE(roomy.output.find("copied 200000\n"), std::string::npos) << roomy.output;
  EXPECT_NE(roomy.output.find("artifacts: " + (mnt / "sigkill").string() + "\n"), std::string::npos)
      << roomy.output;

  auto full = keep_failed_onto_tmpfs("64k");
  EXPECT_EQ(full.code(), 1) << full.output;
  EXPECT_EQ(full.output.find("copied"), std::string::npos) << full.output;
  EXPECT_NE(full.output.find("big: No space left on device"), std::string::npos) << full.output;
  const std::string says = "its run dir stays in ";
  auto at = full.output.find(says);
  ASSERT_NE(at, std::string::npos) << full.output;
  fs::path kept =
      full.output.substr(at + says.size(), full.output.find('\n', at) - at - says.size());
  EXPECT_EQ(fs::file_size(kept / "data/big"), 200000u) << full.output;
  EXPECT_NE(full.output.find("artifacts: " + kept.string() + "\n"), std::string::npos)
      << full.output;
  fs::remove_all(kept);
}

TEST_F(MatrixTest, UnwritableReportIsAnError) {
  auto r = matrix({kSpec, "--json", "/proc/crashkit.json"});
  EXPECT_EQ(r.code(), 3) << r.output;
  EXPECT_NE(r.output.find("report /proc/crashkit.json: create failed"), std::string::npos)
      << r.output;
}

}  // namespace
}  // namespace crashkit
