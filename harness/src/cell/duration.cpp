#include "crashkit/harness/duration.hpp"

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <limits>

#include "crashkit/crash_protocol.hpp"

namespace crashkit {

Result<Duration> parse_duration(std::string_view what, std::string_view text) {
  auto bad = [&](std::string_view why) {
    return usage_error(fmt::format("{}: bad duration '{}' ({}); write e.g. 200ms, 5s, 1.5s, 2m",
                                   what, printable_text(text, 60), why));
  };
  std::size_t i = 0;
  while (i < text.size() && ((text[i] >= '0' && text[i] <= '9') || text[i] == '.')) ++i;
  if (i == 0) return bad("no number");
  double number = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + i, number);
  if (ec != std::errc{} || p != text.data() + i) return bad("not a number");
  std::string_view unit = text.substr(i);
  double ns_per_unit = 0;
  if (unit == "ns")
    ns_per_unit = 1;
  else if (unit == "us")
    ns_per_unit = 1e3;
  else if (unit == "ms")
    ns_per_unit = 1e6;
  else if (unit == "s")
    ns_per_unit = 1e9;
  else if (unit == "m" || unit == "min")
    ns_per_unit = 60e9;
  else if (unit == "h")
    ns_per_unit = 3600e9;
  else
    return bad(unit.empty() ? "missing unit" : "unknown unit");
  double ns = number * ns_per_unit;
  if (!std::isfinite(ns) || ns > 1e18) return bad("too large");
  return Duration(static_cast<std::int64_t>(std::llround(ns)));
}

int poll_timeout_ms(Duration left) {
  if (left <= Duration::zero()) return 0;
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
  return ms >= std::numeric_limits<int>::max() ? std::numeric_limits<int>::max()
                                               : static_cast<int>(ms);
}

std::string format_duration(Duration d) {
  auto ns = d.count();
  auto fmt_unit = [](double v, const char* unit) {
    std::string s = fmt::format("{:.3f}", v);
    while (s.back() == '0') s.pop_back();
    if (s.back() == '.') s.pop_back();
    return s + unit;
  };
  if (ns < 0) return "-" + format_duration(-d);
  if (ns < 1'000) return fmt::format("{}ns", ns);
  if (ns < 1'000'000) return fmt_unit(ns / 1e3, "us");
  if (ns < 1'000'000'000) return fmt_unit(ns / 1e6, "ms");
  return fmt_unit(ns / 1e9, "s");
}

}  // namespace crashkit
