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

#include "crashkit/harness/matrix.hpp"

namespace crashkit {

std::string matrix_summary(const std::vector<MatrixResult>& results, const MatrixPlan& plan,
                           Duration wall);
std::string junit_xml(const std::vector<MatrixResult>& results, Duration wall);
std::string matrix_json(const std::vector<MatrixResult>& results, const MatrixPlan& plan,
                        Duration wall);
// One self-contained HTML file (inline CSS and SVG, no script, nothing fetched): summary,
// findings with repro lines, a point x crossing grid coloured by outcome, recovery times.
std::string matrix_html(const std::vector<MatrixResult>& results, const MatrixPlan& plan,
                        Duration wall);

// Exit code of a whole matrix: 1 with any finding, else 3 with any harness error, else 0.
int matrix_exit_code(const std::vector<MatrixResult>& results);

Status write_report_file(const std::filesystem::path& path, const std::string& content);

}  // namespace crashkit
