// `crashkit matrix --save-baseline / --baseline` on kvd, end to end: the same run twice holds
// every condition; a slower recovery (kvd --recovery-delay 20ms), a new finding (and not a known
// one), a crash point
// no longer reached and a lost cell each fail theirs; bad input is a one-line usage error.
// Timing is judged, so these tests run alone (RUN_SERIAL in tests/CMakeLists.txt) and one cell
// at a time: at -j2 on two cores the cells' restarts contend, and the p99 of nine restarts moves
// by 2 ms between identical runs (docs/baselines.md, "Noise").
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "../support/cli_runner.hpp"
#include "../support/matrix_report.hpp"

namespace crashkit {
namespace {

namespace fs = std::filesystem;

const std::string kCli = CRASHKIT_CLI;
const std::string kSpec = CRASHKIT_SOURCE_DIR "/fixtures/kvd/matrix-baseline.yaml";
const std::string kFixtures = fs::path(CRASHKIT_KVD).parent_path().string();

std::vector<std::string> env(const std::string& bug = "") {
  std::vector<std::string> e{"PATH=" + kFixtures + ":" + getenv("PATH")};
  if (!bug.empty()) e.push_back("KVD_BUG=" + bug);
  return e;
}

fs::path scratch(const std::string& name) {
  return fs::temp_directory_path() / ("ck-baseline-" + std::to_string(getpid()) + "-" + name);
}

// kvd's baseline spec with `from` replaced by `to` (once), written beside the other scratch files.
std::string variant(const std::string& name, const std::string& from, const std::string& to) {
  std::ifstream in(kSpec);
  std::stringstream text;
  text << in.rdbuf();
  std::string s = text.str();
  auto at = s.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) s.replace(at, from.size(), to);
  auto path = scratch(name + ".yaml");
  std::ofstream(path) << s;
  return path.string();
}

// The failed conditions' names, comma-separated, from a JSON report's "baseline".
std::string failed(const nlohmann::json& report) {
  std::string out;
  for (const auto& c : report["baseline"]["conditions"])
    if (!c["held"].get<bool>()) out += (out.empty() ? "" : ",") + c["name"].get<std::string>();
  return out;
}

class BaselineMatrix : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto r = test::run_cli(
        {kCli, "matrix", "-q", kSpec, "-j", "1", "--repeat", "5", "--save-baseline", base()},
        std::chrono::minutes(5), env());
    ASSERT_EQ(r.code(), 0) << r.output;
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(fs::temp_directory_path(), ec))
      if (e.path().filename().string().starts_with(scratch("").filename().string()))
        fs::remove(e.path(), ec);
  }
  static std::string base() { return scratch("base.json").string(); }

  // `crashkit matrix SPEC --baseline base.json ...` and its JSON report.
  static test::MatrixReport against_base(const std::string& spec, const std::string& bug = "",
                                         const char* repeat = "5", bool html = false) {
    return test::run_matrix_report(
        {kCli, "matrix", "-q", spec, "-j", "1", "--repeat", repeat, "--baseline", base()}, env(bug),
        html);
  }
};

TEST_F(BaselineMatrix, TheSameRunTwiceHoldsEveryCondition) {
  auto m = against_base(kSpec, "", "5", /*html=*/true);
  EXPECT_EQ(m.code, 0) << m.json["baseline"].dump(2);
  EXPECT_EQ(failed(m.json), "");
  EXPECT_EQ(m.json["baseline"]["conditions"].size(), 7u);
  EXPECT_EQ(m.json["repeat"], 5);
  EXPECT_NE(m.html.find("Against the baseline"), std::string::npos);
  EXPECT_NE(m.html.find("class=\"before\""), std::string::npos);  // the baseline's curve
  EXPECT_NE(m.html.find("class=\"now\""), std::string::npos);
}

TEST_F(BaselineMatrix, ASlowerRecoveryIsARegression) {
  auto slow = variant("slow", "target: [kvd, ", "target: [kvd, --recovery-delay, \"20ms\", ");
  auto m = against_base(slow);
  EXPECT_EQ(m.code, 1);
  // Every cell still passes: only the timing conditions fail (cells/s drops with them).
  auto f = failed(m.json);
  EXPECT_TRUE(f.starts_with("recovery_p50,recovery_p99")) << m.json["baseline"].dump(2);
  EXPECT_EQ(m.json["counts"]["pass"], 9) << m.json["counts"];
  const auto& now = m.json["baseline"]["now"]["recovery_ms"];
  const auto& before = m.json["baseline"]["baseline"]["recovery_ms"];
  EXPECT_GT(now["p50"].get<double>(), before["p50"].get<double>() + 15);
}

// trim-before-rename fails its two checkpoint.rename crash cells every run, so a baseline saved
// with it knows them. A SIGKILL 10 ms into the workload sometimes lands in its window too, so
// the known-bug half leaves the timed SIGKILLs out (ack-before-write varies more still).
TEST_F(BaselineMatrix, ANewFindingIsARegressionAndAKnownOneIsNot) {
  auto m = against_base(kSpec, "trim-before-rename", "1");
  EXPECT_EQ(m.code, 1);
  EXPECT_TRUE(failed(m.json).starts_with("no_new_findings")) << m.json["baseline"].dump(2);

  // Against a baseline that already had it, the same finding is accepted.
  auto known = scratch("known.json").string();
  auto untimed = variant("untimed", "  - sigkill: {after: [2ms, 10ms]}\n", "");
  auto r = test::run_cli({kCli, "matrix", "-q", untimed, "-j", "2", "--save-baseline", known},
                         std::chrono::minutes(5), env("trim-before-rename"));
  ASSERT_EQ(r.code(), 1) << r.output;  // it saves, and still says it found something
  auto again = test::run_matrix_report(
      {kCli, "matrix", "-q", untimed, "-j", "2", "--baseline", known}, env("trim-before-rename"));
  EXPECT_EQ(failed(again.json).find("no_new_findings"), std::string::npos)
      << again.json["baseline"].dump(2);
  EXPECT_EQ(again.json["counts"].value("violation", 0), 2) << again.json["counts"];
}

TEST_F(BaselineMatrix, AnUnreachedPointAndALostCellAreRegressions) {
  // Two puts: crossing 16 of the WAL points and every checkpoint are never reached.
  auto short_run = variant("short", "--count, \"16\"", "--count, \"2\"");
  auto m = against_base(short_run, "", "1");
  EXPECT_EQ(m.code, 1);
  EXPECT_NE(failed(m.json).find("coverage"), std::string::npos) << m.json["baseline"].dump(2);
  auto lost = variant("lost", "  - sigkill: {after: [2ms, 10ms]}\n", "");
  m = against_base(lost, "", "1");
  EXPECT_EQ(m.code, 1);
  EXPECT_NE(failed(m.json).find("no_lost_cells"), std::string::npos) << m.json["baseline"].dump(2);
}

TEST_F(BaselineMatrix, BadInputIsAOneLineUsageError) {
  auto report = scratch("report.json").string();
  std::ofstream(report) << "{\"cells\": []}\n";
  const std::vector<std::vector<std::string>> cases{
      {"--baseline", scratch("missing.json").string()},
      {"--baseline", report},
      {"--baseline", fs::temp_directory_path().string()},
      {"--baseline", base(), "--shard", "0/2"},
      {"--save-baseline", base(), "--cell", "sigkill"},
      {"--save-baseline", "/nonexistent/dir/base.json"},
      {"--repeat", "0"},
      {"--repeat", "many"},
  };
  for (const auto& extra : cases) {
    std::vector<std::string> argv{kCli, "matrix", "-q", kSpec};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto r = test::run_cli(argv, std::chrono::minutes(1), env());
    EXPECT_EQ(r.code(), 2) << extra[0] << " " << extra[1] << ": " << r.output;
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
  }
}

}  // namespace
}  // namespace crashkit
