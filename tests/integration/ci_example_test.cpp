// dist/ci/crash-matrix.yml is executable documentation: its shard steps are run here as
// written (GitHub expressions substituted, the checkout and build mapped in), and their JUnit
// reports must partition one matrix: every cell exactly once over the shards.
#include <gtest/gtest.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>

#include "../support/cli_runner.hpp"

namespace crashkit {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (auto at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
    s.replace(at, from.size(), to);
  return s;
}

TEST(CiExample, ShardStepsPartitionTheMatrix) {
  auto wf = YAML::LoadFile(CRASHKIT_SOURCE_DIR "/dist/ci/crash-matrix.yml");
  auto job = wf["jobs"]["crash-matrix"];
  ASSERT_TRUE(job) << "job crash-matrix missing";
  auto shards = job["strategy"]["matrix"]["shard"].as<std::vector<int>>();
  const int total = std::stoi(wf["env"]["SHARDS"].as<std::string>());
  ASSERT_EQ(static_cast<int>(shards.size()), total);
  std::string script;
  for (const auto& step : job["steps"])
    if (step["name"] && step["name"].as<std::string>().rfind("Run crash matrix", 0) == 0)
      script = step["run"].as<std::string>();
  ASSERT_FALSE(script.empty()) << "no 'Run crash matrix' step";

  // A workspace that looks like the checkout after "Install dependencies and build".
  fs::path ws = fs::temp_directory_path() / ("ck-ci-" + std::to_string(getpid()));
  fs::create_directories(ws / "build");
  fs::create_directory_symlink(CRASHKIT_SOURCE_DIR "/fixtures", ws / "fixtures");
  fs::create_directory_symlink(fs::path(CRASHKIT_CLI).parent_path().parent_path(),
                               ws / "build" / "default");
  std::multiset<std::string> cells;
  for (int shard : shards) {
    std::string s = replace_all(script, "${{ matrix.shard }}", std::to_string(shard));
    s = replace_all(s, "${{ env.SHARDS }}", std::to_string(total));
    s = replace_all(s, "${{ github.run_number }}", "17");
    ASSERT_EQ(s.find("${{"), std::string::npos) << "unsubstituted expression in:\n" << s;
    auto r = test::run_cli({"/bin/bash", "-euc", "cd " + ws.string() + "\n" + s}, 10min);
    EXPECT_EQ(r.code(), 0) << "shard " << shard << ":\n" << r.output;
    for (auto f : {"junit-{}.xml", "report-{}.html", "cells-{}.json"}) {
      auto file = ws / "out" / replace_all(f, "{}", std::to_string(shard));
      EXPECT_TRUE(fs::exists(file)) << file;
    }
    std::ifstream in(ws / "out" / ("junit-" + std::to_string(shard) + ".xml"));
    std::string xml(std::istreambuf_iterator<char>(in), {});
    std::regex name("<testcase classname=\"[^\"]*\" name=\"([^\"]+)\"");
    for (std::sregex_iterator it(xml.begin(), xml.end(), name), end; it != end; ++it)
      cells.insert((*it)[1]);
  }
  fs::remove_all(ws);
  EXPECT_GT(cells.size(), 50u);
  for (const auto& c : cells) EXPECT_EQ(cells.count(c), 1u) << c << " ran in more than one shard";
}

TEST(CiExample, GtestJobShardsMatchItsMatrix) {
  auto wf = YAML::LoadFile(CRASHKIT_SOURCE_DIR "/dist/ci/crash-matrix.yml");
  auto job = wf["jobs"]["gtest-crash-matrix"];
  ASSERT_TRUE(job);
  auto shards = job["strategy"]["matrix"]["shard"].as<std::vector<int>>();
  for (const auto& step : job["steps"]) {
    if (!step["env"] || !step["env"]["GTEST_TOTAL_SHARDS"]) continue;
    EXPECT_EQ(std::stoul(step["env"]["GTEST_TOTAL_SHARDS"].as<std::string>()), shards.size());
    EXPECT_NE(step["run"].as<std::string>().find("build/default/fixtures/kvd_crash_matrix"),
              std::string::npos);
    return;
  }
  FAIL() << "no step sets GTEST_TOTAL_SHARDS";
}

}  // namespace
}  // namespace crashkit
