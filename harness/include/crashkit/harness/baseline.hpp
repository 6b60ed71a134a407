// Baselines: a matrix run measured (outcomes, crash points reached, recovery times, cells/s)
// and saved as JSON, then a later run judged against it on seven conditions. A regression is
// a failed condition; findings the baseline already had are not (docs/baselines.md).
//
//   std::vector<MatrixRun> runs = ...;                 // --repeat K runs of the same cells
//   Baseline now = measure_baseline(runs, spec.file, plan.seed);
//   auto before = load_baseline("base.json");          // Result<Baseline>
//   BaselineVerdict v = compare_baseline(*before, now, spec.baseline);
//   if (v.regressed()) return exit_code::finding;
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "crashkit/harness/duration.hpp"
#include "crashkit/harness/matrix.hpp"
#include "crashkit/harness/outcome.hpp"
#include "crashkit/harness/result.hpp"

namespace crashkit {

// One run of a matrix's cells: their results and the time run_matrix took.
struct MatrixRun {
  std::vector<MatrixResult> results;
  Duration wall{};
};

// What one cell was, over the repeats: its worst outcome, whether its fault was reached in
// every repeat, and its median recovery (restart -> READY) in milliseconds.
struct BaselineCell {
  std::string id;
  Outcome outcome = Outcome::pass;
  bool reached = true;
  std::optional<double> recovery_ms;
};

struct Baseline {
  std::string spec;  // the matrix file it was measured with (informational)
  std::uint64_t seed = 0;
  unsigned repeat = 1;
  unsigned jobs = 0;  // -j it ran with (0: not recorded); cells/s depends on it
  double cells_per_s = 0;  // median over the repeats
  // Percentiles (nearest rank) over every restart's time, each a median over the repeats.
  std::optional<double> recovery_p50_ms;
  std::optional<double> recovery_p99_ms;
  std::vector<std::string> points_reached;  // crash points that fired, sorted
  std::vector<BaselineCell> cells;          // in matrix order
};

// Measures K runs of the same cells (K >= 1).
Baseline measure_baseline(const std::vector<MatrixRun>& runs, const std::filesystem::path& spec,
                          std::uint64_t seed);
// One result per cell for the reports: a repeat that needed attention, else the last; the
// other repeats that did not pass are added to its notes.
std::vector<MatrixResult> merge_repeats(const std::vector<MatrixRun>& runs);

std::string baseline_json(const Baseline& b);
// Errors are usage errors naming `file` and what is wrong with it.
Result<Baseline> parse_baseline(std::string_view json, const std::filesystem::path& file);
Result<Baseline> load_baseline(const std::filesystem::path& file);

struct BaselineCondition {
  std::string name;  // no_new_findings, coverage, no_lost_cells, recovery_p50, ...
  bool held = true;
  std::string detail;  // one line: the numbers, or the cells that broke it
};

struct BaselineVerdict {
  std::filesystem::path file;
  Baseline before, now;
  BaselineThresholds thresholds;
  std::vector<BaselineCondition> conditions;  // always the seven, in a fixed order
  std::vector<std::string> notes;             // new cells, a different seed or spec
  bool regressed() const;
};

BaselineVerdict compare_baseline(const Baseline& before, const Baseline& now,
                                 const BaselineThresholds& thresholds);

// The verdict for the terminal: a line per condition and the notes.
std::string baseline_summary(const BaselineVerdict& v);

}  // namespace crashkit
