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

TEST_F(MatrixTest, UnknownPointInSpecIsAUsageError) {
  std::string yaml =
      "target: [pointd, serve, --data-dir, \"{data_dir}\", --socket, \"{run_dir}/s\"]\n"
      "workload: [pointd, load, --socket, \"{run_dir}/s\", --count, \"2\"]\n"
      "faults:\n  - crash_points: {points: [append.nope], action: kill}\n";
  auto r = matrix({write("u.yaml", yaml).string()});
  EXPECT_EQ(r.code(), 2) << r.output;
  EXPECT_NE(r.output.find("unknown point 'append.nope'"), std::string::npos) << r.output;
}

TEST_F(MatrixTest, UnwritableReportIsAnError) {
  auto r = matrix({kSpec, "--json", "/proc/crashkit.json"});
  EXPECT_EQ(r.code(), 3) << r.output;
  EXPECT_NE(r.output.find("report /proc/crashkit.json: create failed"), std::string::npos)
      << r.output;
}

}  // namespace
}  // namespace crashkit
