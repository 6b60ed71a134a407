// Fuzzes human durations ("200ms", "1.5s", "2m": --ready-timeout, a matrix's timeouts and
// `after:`) and the --fault grammar that embeds them (sigkill-after=DURATION, powerloss(torn)):
// parse_duration, format_duration, Fault::parse, Fault::to_string.
//
// Properties: a rejection is a usage error naming the option, on one line when the text is
// one; an accepted duration lies in 0..1e18 ns (the parser's cap), prints to text that parses
// back to within the printed precision, and that value prints and parses back to itself; an
// accepted fault prints as a --fault that parses back to the same fault.
#include <fmt/format.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "crashkit/harness/cell.hpp"
#include "crashkit/harness/duration.hpp"
#include "property.hpp"

namespace {

using crashkit::Duration;
using crashkit::fuzz::broken;

constexpr std::string_view kOption = "--fuzz-timeout";

// format_duration prints three decimals of the largest unit not above the value (ns, us, ms, s),
// so a printed value is off by at most half a thousandth of that unit, plus the double's own
// rounding of values near 1e18.
std::int64_t printed_precision(Duration d) {
  const std::int64_t ns = d.count();
  const std::int64_t unit = ns < 1'000           ? 0
                            : ns < 1'000'000     ? 1'000
                            : ns < 1'000'000'000 ? 1'000'000
                                                 : 1'000'000'000;
  return unit / 2000 + ns / 1'000'000'000'000'000 + 1;  // a double's relative 1e-15
}

Duration reparse(Duration d, std::string_view context) {
  const std::string text = crashkit::format_duration(d);
  auto again = crashkit::parse_duration(kOption, text);
  if (!again)
    broken(fmt::format("duration: {} printed as '{}', which is rejected: {}", context, text,
                       again.error().message));
  return *again;
}

void check_duration(std::string_view text, Duration d) {
  if (d.count() < 0 || d.count() > 1'000'000'000'000'000'000)
    broken(fmt::format("duration: '{}' accepted as {} ns, outside 0..1e18", text, d.count()));
  const Duration once = reparse(d, "the parsed value");
  if (std::llabs(once.count() - d.count()) > printed_precision(d))
    broken(fmt::format("duration: {} ns printed as '{}' reads back as {} ns", d.count(),
                       crashkit::format_duration(d), once.count()));
  const Duration twice = reparse(once, "a printed value");
  if (twice != once)
    broken(fmt::format("duration: '{}' does not read back as itself ({} ns, then {} ns)",
                       crashkit::format_duration(once), once.count(), twice.count()));
}

void check_fault(const crashkit::Fault& f) {
  const std::string text = f.to_string();
  auto again = crashkit::Fault::parse(text);
  if (!again)
    broken(fmt::format("fault: printed as '{}', rejected: {}", text, again.error().message));
  if (again->kind != f.kind || again->crash_state != f.crash_state)
    broken(fmt::format("fault: '{}' parsed back as '{}'", text, again->to_string()));
  if (std::llabs(again->after.count() - f.after.count()) > printed_precision(f.after))
    broken(fmt::format("fault: '{}' after {} ns reads back as {} ns", text, f.after.count(),
                       again->after.count()));
}

// Both parsers quote the text escaped (printable_text), so every rejection is one line.
void check_rejection(std::string_view, const crashkit::Error& error, std::string_view parser,
                     std::string_view option) {
  if (error.kind != crashkit::ErrorKind::usage)
    broken(std::string(parser) + ": rejection is not a usage error");
  crashkit::fuzz::require_one_line_message(error.message, parser);
  if (!error.message.starts_with(option))
    broken(fmt::format("{}: rejection does not start with {}: {}", parser, option, error.message));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto d = crashkit::parse_duration(kOption, text);
  if (d)
    check_duration(text, *d);
  else
    check_rejection(text, d.error(), "duration", kOption);
  auto fault = crashkit::Fault::parse(text);
  if (fault)
    check_fault(*fault);
  else
    check_rejection(text, fault.error(), "fault", "--fault");
  return 0;
}
