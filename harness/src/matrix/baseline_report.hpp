// Private to the report writers: a baseline verdict's part of each report (JUnit, JSON, HTML).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "crashkit/harness/baseline.hpp"

namespace crashkit::detail {

// A <testsuite name="crashkit.baseline"> with one testcase per condition.
std::string baseline_junit(const BaselineVerdict& v);
nlohmann::json baseline_report_json(const BaselineVerdict& v);
// The conditions as a table, and the cells' recovery times against the baseline's as two
// curves (each sorted, so the plot reads as a distribution; p50 and p99 marked).
std::string baseline_html(const BaselineVerdict& v);

}  // namespace crashkit::detail
