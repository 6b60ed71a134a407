// `baseline:` in a matrix spec: the thresholds --baseline judges timing by.
#include <charconv>
#include <cmath>

#include "matrix/spec_reader.hpp"

namespace crashkit::detail {

// "+25%" (recovery may grow by) or "-20%" (cells/s may drop by); the sign may be left out but
// not reversed, so that "recovery_p99: -25%" is an error rather than a silent +25%.
double SpecReader::percent(const YAML::Node& n, const char* what, char sign, double max) const {
  std::string text = scalar(n, what);
  std::string_view s = text;
  if (!s.empty() && s.front() == sign) s.remove_prefix(1);
  double v = -1;
  const bool pct = !s.empty() && s.back() == '%';
  if (pct) s.remove_suffix(1);
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (!pct || ec != std::errc() || end != s.data() + s.size() || !std::isfinite(v) || v < 0 ||
      v > max)
    fail(n, fmt::format("{}: '{}' is not a percentage; write e.g. {}25% (0 to {:g})", what,
                        printable_text(text, 40), sign, max));
  return v;
}

// baseline: {recovery_p50: +25%, recovery_p99: +25%, recovery_floor: 2ms, cells_per_s: -20%}
BaselineThresholds SpecReader::baseline(const YAML::Node& n) const {
  BaselineThresholds t;
  if (!n) return t;
  known_keys(n, {"recovery_p50", "recovery_p99", "recovery_floor", "cells_per_s"});
  if (n["recovery_p50"])
    t.recovery_p50_pct = percent(n["recovery_p50"], "recovery_p50", '+', 10000);
  if (n["recovery_p99"])
    t.recovery_p99_pct = percent(n["recovery_p99"], "recovery_p99", '+', 10000);
  if (n["recovery_floor"]) t.recovery_floor = duration(n["recovery_floor"], "recovery_floor");
  if (n["cells_per_s"]) t.cells_per_s_pct = percent(n["cells_per_s"], "cells_per_s", '-', 100);
  return t;
}

}  // namespace crashkit::detail
