// Fuzzes the baseline file reader (docs/baselines.md): parse_baseline, what
// `crashkit matrix --baseline FILE` reads.
//
// Properties: a rejection is a usage error on one line naming the flag; an accepted baseline
// written back reads back to the same text, and judged against itself holds all seven
// conditions (nothing can regress against itself).
#include <fmt/format.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "crashkit/harness/baseline.hpp"
#include "property.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using crashkit::fuzz::broken;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto b = crashkit::parse_baseline(text, "base.json");
  if (!b) {
    if (b.error().kind != crashkit::ErrorKind::usage) broken("baseline: not a usage error");
    crashkit::fuzz::require_one_line_message(b.error().message, "baseline");
    if (!b.error().message.starts_with("--baseline base.json: "))
      broken("baseline: rejection does not name the file: " + b.error().message);
    return 0;
  }
  const std::string written = crashkit::baseline_json(*b);
  auto again = crashkit::parse_baseline(written, "base.json");
  if (!again) broken("baseline: its own output is refused: " + again.error().message);
  if (crashkit::baseline_json(*again) != written)
    broken("baseline: written and read back, it changed:\n" + written);
  auto v = crashkit::compare_baseline(*b, *b, {});
  if (v.conditions.size() != 7 || v.regressed())
    broken("baseline: regressed against itself:\n" + crashkit::baseline_summary(v));
  return 0;
}
