// Baselines without processes: measuring runs (medians over repeats, worst outcome, coverage),
// the seven conditions each held and failed, the file format's round trip and its bad inputs,
// and the spec's thresholds.
#include "crashkit/harness/baseline.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "crashkit/harness/matrix.hpp"

namespace crashkit {
namespace {

using namespace std::chrono_literals;

MatrixResult cell(std::string id, Outcome o, std::optional<Duration> recovery = 4ms,
                  std::string point = "") {
  MatrixResult r;
  r.cell.id = std::move(id);
  r.cell.point = std::move(point);
  r.result.outcome = o;
  if (!r.cell.point.empty() && o != Outcome::fault_not_reached)
    r.result.fired.push_back(r.cell.point + "@3");
  CycleResult c;
  c.recovery = recovery;
  r.result.cycles.push_back(c);
  return r;
}

// Three cells, the third a crash cell at wal.fsync; `recovery` for all three.
MatrixRun run(Duration recovery, Outcome second = Outcome::pass, Duration wall = 1s) {
  return {{cell("sigkill", Outcome::pass, recovery), cell("sigterm", second, recovery),
           cell("wal_fsync_at_3", Outcome::pass, recovery, "wal.fsync")},
          wall};
}

const BaselineCondition& condition(const BaselineVerdict& v, const std::string& name) {
  for (const auto& c : v.conditions)
    if (c.name == name) return c;
  throw std::runtime_error("no condition " + name);
}

// The failed conditions' names, comma-separated.
std::string failed(const BaselineVerdict& v) {
  std::string out;
  for (const auto& c : v.conditions)
    if (!c.held) out += (out.empty() ? "" : ",") + c.name;
  return out;
}

TEST(Baseline, MeasuresMediansOverRepeatsAndEachCellsWorstRepeat) {
  // One repeat has a 50 ms hiccup on every restart and one cell failing: the medians ignore the
  // hiccup, the cell keeps its finding.
  auto b = measure_baseline({run(4ms), run(50ms, Outcome::violation, 3s), run(6ms)}, "m.yaml", 7);
  EXPECT_EQ(b.repeat, 3u);
  EXPECT_EQ(b.seed, 7u);
  EXPECT_DOUBLE_EQ(b.cells_per_s, 3.0);
  ASSERT_TRUE(b.recovery_p50_ms && b.recovery_p99_ms);
  EXPECT_DOUBLE_EQ(*b.recovery_p50_ms, 6.0);
  EXPECT_DOUBLE_EQ(*b.recovery_p99_ms, 6.0);
  ASSERT_EQ(b.cells.size(), 3u);
  EXPECT_EQ(b.cells[1].outcome, Outcome::violation);
  EXPECT_EQ(b.cells[0].outcome, Outcome::pass);
  EXPECT_EQ(b.points_reached, std::vector<std::string>{"wal.fsync"});
}

TEST(Baseline, MergeRepeatsKeepsTheRepeatThatNeedsAttention) {
  auto merged = merge_repeats({run(4ms), run(4ms, Outcome::violation), run(4ms)});
  ASSERT_EQ(merged.size(), 3u);
  EXPECT_EQ(merged[1].result.outcome, Outcome::violation);
  EXPECT_EQ(merged[0].result.outcome, Outcome::pass);
  auto again = merge_repeats({run(4ms, Outcome::violation), run(4ms, Outcome::not_ready)});
  ASSERT_EQ(again[1].result.notes.size(), 1u);
  EXPECT_NE(again[1].result.notes[0].find("repeat 2 of 2: not_ready"), std::string::npos);
}

TEST(Baseline, TheSameMeasurementHoldsEveryCondition) {
  auto b = measure_baseline({run(4ms)}, "m.yaml", 1);
  auto v = compare_baseline(b, b, {});
  EXPECT_EQ(v.conditions.size(), 7u);
  EXPECT_FALSE(v.regressed()) << failed(v);
}

struct Case {
  const char* name;
  MatrixRun now;
  const char* fails;
};

void PrintTo(const Case& c, std::ostream* os) {
  *os << c.name;
}

class BaselineCondition_ : public ::testing::TestWithParam<Case> {};

// Against a baseline of run(4ms): each change fails exactly its own condition.
TEST_P(BaselineCondition_, FailsOnItsOwnRegressionOnly) {
  auto before = measure_baseline({run(4ms)}, "m.yaml", 1);
  auto now = measure_baseline({GetParam().now}, "m.yaml", 1);
  auto v = compare_baseline(before, now, {});
  EXPECT_EQ(failed(v), GetParam().fails) << baseline_summary(v);
}

MatrixRun without_cell() {
  auto r = run(4ms);
  r.results.erase(r.results.begin() + 1);  // sigterm (the crash cell's loss is coverage too)
  r.wall = std::chrono::duration_cast<Duration>(2s) / 3;  // the same cells per second
  return r;
}

MatrixRun unreached() {
  auto r = run(4ms);
  r.results[2] = cell("wal_fsync_at_3", Outcome::fault_not_reached, 4ms, "wal.fsync");
  return r;
}

INSTANTIATE_TEST_SUITE_P(
    Seven, BaselineCondition_,
    ::testing::Values(Case{"a passing cell fails", run(4ms, Outcome::violation), "no_new_findings"},
                      Case{"a crash point no longer fires", unreached(), "coverage"},
                      Case{"a cell is gone", without_cell(), "no_lost_cells"},
                      // +25% and +2 ms: 4 -> 7 ms (+75%, +3 ms) fails both p50 and p99
                      Case{"slower recovery, p50 and p99", run(7ms), "recovery_p50,recovery_p99"},
                      Case{"half the cells per second", run(4ms, Outcome::pass, 2s), "cells_per_s"},
                      Case{"a harness error", run(4ms, Outcome::harness_error),
                           "no_new_harness_errors"}),
    [](const auto& info) {
      std::string n = info.param.name;
      for (char& c : n) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
      return n;
    });

TEST(Baseline, RecoveryNeedsBothThePercentageAndTheFloor) {
  auto before = measure_baseline({run(4ms)}, "m.yaml", 1);
  // +50% but only +2 ms: below the floor; +1.5 ms on a slow daemon: below 25%.
  auto v = compare_baseline(before, measure_baseline({run(6ms)}, "m.yaml", 1), {});
  EXPECT_TRUE(condition(v, "recovery_p50").held) << condition(v, "recovery_p50").detail;
  auto slow = measure_baseline({run(100ms)}, "m.yaml", 1);
  v = compare_baseline(slow, measure_baseline({run(120ms)}, "m.yaml", 1), {});
  EXPECT_TRUE(condition(v, "recovery_p99").held);
  v = compare_baseline(slow, measure_baseline({run(130ms)}, "m.yaml", 1), {});
  EXPECT_FALSE(condition(v, "recovery_p99").held);
  // A known finding is not a regression; a new cell only gets a note.
  auto failing = measure_baseline({run(4ms, Outcome::violation)}, "m.yaml", 1);
  auto grown = run(4ms, Outcome::violation);
  grown.results.push_back(cell("sigkill_after_2ms", Outcome::pass));
  v = compare_baseline(failing, measure_baseline({grown}, "m.yaml", 1), {});
  EXPECT_FALSE(v.regressed());
  ASSERT_EQ(v.notes.size(), 1u);
  EXPECT_NE(v.notes[0].find("sigkill_after_2ms"), std::string::npos);
}

TEST(Baseline, TheFileRoundTrips) {
  auto b = measure_baseline({run(4ms), run(5ms, Outcome::violation)}, "m.yaml", 42);
  auto back = parse_baseline(baseline_json(b), "base.json");
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->seed, 42u);
  EXPECT_EQ(back->repeat, 2u);
  EXPECT_EQ(back->cells.size(), 3u);
  EXPECT_EQ(back->cells[1].outcome, Outcome::violation);
  EXPECT_EQ(back->points_reached, b.points_reached);
  EXPECT_FALSE(compare_baseline(*back, b, {}).regressed());
}

TEST(Baseline, BadFilesAreOneLineUsageErrors) {
  auto good = nlohmann::json::parse(baseline_json(measure_baseline({run(4ms)}, "m.yaml", 1)));
  std::vector<std::string> bad{"", "[", "{}", "[1,2]", R"({"crashkit_baseline": 2})"};
  for (auto [key, value] : std::vector<std::pair<const char*, nlohmann::json>>{
           {"seed", -1},
           {"repeat", 0},
           {"cells_per_s", "fast"},
           {"cells_per_s", 1e300},
           {"points_reached", 3},
           {"cells", nlohmann::json::array({{{"id", "a"}, {"outcome", "won"}, {"reached", true}}})},
           {"cells",
            nlohmann::json::array({{{"id", "a"}, {"outcome", "pass"}, {"reached", true}},
                                   {{"id", "a"}, {"outcome", "pass"}, {"reached", true}}})},
           {"recovery_ms", {{"p50", -3}, {"p99", 1}}}}) {
    auto j = good;
    j[key] = value;
    bad.push_back(j.dump());
  }
  for (const auto& text : bad) {
    auto b = parse_baseline(text, "base.json");
    ASSERT_FALSE(b) << text;
    EXPECT_EQ(b.error().kind, ErrorKind::usage);
    EXPECT_EQ(b.error().message.find('\n'), std::string::npos) << b.error().message;
    EXPECT_NE(b.error().message.find("base.json"), std::string::npos) << b.error().message;
  }
  auto missing = load_baseline("/nonexistent/base.json");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("--save-baseline"), std::string::npos);
}

TEST(Baseline, SpecThresholds) {
  auto spec = [](const std::string& baseline) {
    return parse_matrix_spec("target: [kvd]\nfaults: [sigkill]\nbaseline: " + baseline + "\n",
                             "m.yaml");
  };
  auto m = spec("{recovery_p50: +10%, recovery_p99: 50%, recovery_floor: 5ms, cells_per_s: -30%}");
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_DOUBLE_EQ(m->baseline.recovery_p50_pct, 10);
  EXPECT_DOUBLE_EQ(m->baseline.recovery_p99_pct, 50);
  EXPECT_EQ(m->baseline.recovery_floor, Duration(5ms));
  EXPECT_DOUBLE_EQ(m->baseline.cells_per_s_pct, 30);
  auto defaults = spec("{}");
  ASSERT_TRUE(defaults) << defaults.error().message;
  EXPECT_DOUBLE_EQ(defaults->baseline.recovery_p99_pct, 25);
  EXPECT_DOUBLE_EQ(defaults->baseline.cells_per_s_pct, 20);
  for (const char* bad :
       {"{recovery_p99: -25%}", "{recovery_p99: 25}", "{cells_per_s: +20%}", "{cells_per_s: -120%}",
        "{recovery_p50: nan%}", "{recovery_floor: 2}", "{p99: +25%}", "+25%"}) {
    auto r = spec(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_NE(r.error().message.find("m.yaml:3"), std::string::npos) << r.error().message;
  }
}

}  // namespace
}  // namespace crashkit
