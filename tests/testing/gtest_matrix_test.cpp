// crashkit::testing end to end: the gtest binaries built with CRASHKIT_CRASH_MATRIX are run as
// child processes and their gtest JSON reports read back: names, pass/fail/skip, repro lines.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "../support/cli_runner.hpp"
#include "crashkit/testing/gtest.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

struct GtestRun {
  int code = -1;
  std::string output;
  std::map<std::string, nlohmann::json> tests;  // "Suite.name" -> testsuite entry
};

GtestRun run_gtest(const std::string& binary, const std::string& filter,
                   std::vector<std::string> env = {}) {
  static int n = 0;
  auto json = fs::temp_directory_path() /
              ("ck-gtest-" + std::to_string(getpid()) + "-" + std::to_string(n++) + ".json");
  auto r = crashkit::test::run_cli(
      {binary, "--gtest_filter=" + filter, "--gtest_output=json:" + json.string()}, 5min, env);
  GtestRun out{r.code(), r.output, {}};
  std::ifstream in(json);
  if (!in) {
    ADD_FAILURE() << "no gtest JSON from " << binary << "; output:\n" << r.output;
    return out;
  }
  auto j = nlohmann::json::parse(in);
  for (const auto& suite : j["testsuites"])
    for (const auto& t : suite["testsuite"])
      out.tests[suite["name"].get<std::string>() + "." + t["name"].get<std::string>()] = t;
  fs::remove(json);
  return out;
}

std::string failure_text(const nlohmann::json& t) {
  std::string s;
  if (t.contains("failures"))
    for (const auto& f : t["failures"]) s += f["failure"].get<std::string>();
  return s;
}

TEST(GtestMatrix, BuiltSpecPassesAndSkipsTheUnreachedCrossing) {
  auto r = run_gtest(CRASHKIT_BUILT_MATRIX, "BuiltKvd/*");
  EXPECT_EQ(r.code, 0) << r.output;
  ASSERT_EQ(r.tests.size(), 3u) << r.output;
  const std::string base = "BuiltKvd/CrashMatrix.cell/";
  for (auto name : {"sigkill", "wal_fsync_at_3"}) {
    auto& t = r.tests[base + name];
    EXPECT_EQ(t["result"], "COMPLETED") << name;
    EXPECT_FALSE(t.contains("failures")) << name << ": " << failure_text(t);
  }
  EXPECT_EQ(r.tests[base + "wal_fsync_at_999"]["result"], "SKIPPED") << r.output;
  EXPECT_NE(r.output.find("fault_not_reached"), std::string::npos) << r.output;
  // The repro line is also a property in gtest's report, for CI to show.
  EXPECT_NE(r.tests[base + "sigkill"].value("repro", "").find("crashkit run --fault sigkill"),
            std::string::npos);
}

TEST(GtestMatrix, FindingFailsWithReasonAndRepro) {
  auto r =
      run_gtest(CRASHKIT_BUILT_MATRIX, "BuiltKvd/*.cell/sigkill", {"KVD_BUG=replay-off-by-one"});
  EXPECT_EQ(r.code, 1) << r.output;
  auto text = failure_text(r.tests["BuiltKvd/CrashMatrix.cell/sigkill"]);
  EXPECT_NE(text.find("[violation]"), std::string::npos) << text;
  EXPECT_NE(text.find("repro: crashkit run --fault sigkill"), std::string::npos) << text;
  EXPECT_NE(text.find("artifacts: "), std::string::npos) << text;
}

// workload: {put: ...} and {verify: ...} from a YAML spec in a test binary: both sides.
TEST(GtestMatrix, LedgerMapFormsPassAKeptStoreAndCatchALostOne) {
  auto kept = run_gtest(CRASHKIT_BUILT_MATRIX, "LedgerFiles/*");
  EXPECT_EQ(kept.code, 0) << kept.output;
  ASSERT_EQ(kept.tests.size(), 1u) << kept.output;
  auto lost = run_gtest(CRASHKIT_BUILT_MATRIX, "LedgerFiles/*", {"LOSE=1"});
  EXPECT_EQ(lost.code, 1) << lost.output;
  auto text = failure_text(lost.tests["LedgerFiles/CrashMatrix.cell/sigkill"]);
  EXPECT_NE(text.find("lost 10 of 10 acked"), std::string::npos) << text;
}

TEST(GtestMatrix, UnloadableSpecIsOneFailingTestNotACrash) {
  auto r = run_gtest(CRASHKIT_BUILT_MATRIX, "Broken/*");
  EXPECT_EQ(r.code, 1) << r.output;
  ASSERT_EQ(r.tests.size(), 1u) << r.output;
  auto text = failure_text(r.tests.begin()->second);
  EXPECT_EQ(r.tests.begin()->first, "Broken/CrashMatrix.cell/matrix_error");
  EXPECT_NE(text.find("/nonexistent/crashkit-matrix.yaml"), std::string::npos) << text;
}

TEST(GtestMatrix, KvdCrashMatrixListsExactlyTheExpandedCells) {
  auto listed = crashkit::test::run_cli({CRASHKIT_KVD_CRASH_MATRIX, "--gtest_list_tests"});
  ASSERT_EQ(listed.code(), 0) << listed.output;
  std::set<std::string> names;
  std::istringstream in(listed.output);
  for (std::string line; std::getline(in, line);)
    if (line.rfind("  cell/", 0) == 0) names.insert(line.substr(7, line.find(' ', 7) - 7));
  // Expanded here with the same seed the binary uses: the names are the cells, one for one.
  std::string path = fs::path(CRASHKIT_KVD).parent_path().string() + ":" + getenv("PATH");
  setenv("PATH", path.c_str(), 1);
  auto cases = crashkit::testing::matrix_cases(
      crashkit::testing::matrix_file(CRASHKIT_SOURCE_DIR "/fixtures/kvd/matrix.yaml"));
  ASSERT_GT(cases.size(), 50u);
  ASSERT_TRUE(cases[0].cell) << cases[0].error;
  EXPECT_EQ(names.size(), cases.size());
  for (const auto& c : cases) EXPECT_TRUE(names.count(c.name)) << c.name;
  EXPECT_TRUE(names.count("sigkill_after_10ms"));
}

}  // namespace
