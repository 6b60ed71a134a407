// Matrix reports: the terminal summary (outcome counts, findings with repro lines, coverage
// gaps), JUnit XML (one testcase per cell), JSON and HTML. Files are written atomically (temp file,
// fsync, rename), so a full or unwritable directory is an error, never a truncated report.
//
//   fmt::print("{}", matrix_summary(results, plan, wall));
//   if (auto s = write_report_file("out/junit.xml", junit_xml(results, wall)); !s) ...
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "crashkit/harness/baseline.hpp"
#include "crashkit/harness/matrix.hpp"

namespace crashkit {

// With `baseline` (--baseline), each report also lists its seven conditions, held or failed.
std::string matrix_summary(const std::vector<MatrixResult>& results, const MatrixPlan& plan,
                           Duration wall, const BaselineVerdict* baseline = nullptr);
std::string junit_xml(const std::vector<MatrixResult>& results, Duration wall,
                      const BaselineVerdict* baseline = nullptr);
std::string matrix_json(const std::vector<MatrixResult>& results, const MatrixPlan& plan,
                        Duration wall, const BaselineVerdict* baseline = nullptr);
// One self-contained HTML file (inline CSS and SVG, no script, nothing fetched): summary,
// findings with repro lines, a point x crossing grid coloured by outcome, recovery times (and
// against the baseline's).
std::string matrix_html(const std::vector<MatrixResult>& results, const MatrixPlan& plan,
                        Duration wall, const BaselineVerdict* baseline = nullptr);

// Exit code of a whole matrix: 1 with any finding, else 3 with any harness error, else 0.
// Against a baseline: 1 when a condition failed, else 0 (its known findings are accepted).
int matrix_exit_code(const std::vector<MatrixResult>& results,
                     const BaselineVerdict* baseline = nullptr);

Status write_report_file(const std::filesystem::path& path, const std::string& content);

}  // namespace crashkit
