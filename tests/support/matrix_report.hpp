// Runs `crashkit matrix ...` with --json (and --html) and reads the reports back, for tests
// that judge a whole matrix by its cells. A missing JSON report is a test failure, with the
// command's output.
//
//   auto m = test::run_matrix_report({kCli, "matrix", "-q", spec}, {"KVD_BUG=x"});
//   for (const auto& c : m.json["cells"]) ...
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli_runner.hpp"

namespace crashkit::test {

struct MatrixReport {
  int code = -1;
  nlohmann::json json;  // null when no report was written
  std::string html;     // with `with_html`
};

inline MatrixReport run_matrix_report(std::vector<std::string> argv,
                                      const std::vector<std::string>& env, bool with_html = false) {
  static int counter = 0;
  const auto base = std::filesystem::temp_directory_path() /
                    ("ck-report-" + std::to_string(getpid()) + "-" + std::to_string(counter++));
  const auto json = base.string() + ".json", html = base.string() + ".html";
  argv.insert(argv.end(), {"--json", json});
  if (with_html) argv.insert(argv.end(), {"--html", html});
  auto r = run_cli(std::move(argv), std::chrono::minutes(10), env);
  MatrixReport m;
  m.code = r.code();
  if (std::ifstream in(json); in) {
    m.json = nlohmann::json::parse(in);
  } else {
    ADD_FAILURE() << "no JSON report; output:\n" << r.output;
  }
  if (std::ifstream in(html); with_html && in)
    m.html.assign(std::istreambuf_iterator<char>(in), {});
  std::error_code ec;
  std::filesystem::remove(json, ec);
  std::filesystem::remove(html, ec);
  return m;
}

}  // namespace crashkit::test
