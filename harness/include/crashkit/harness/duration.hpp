// Parsing and printing of human durations for options and matrix files: "200ms", "5s",
// "1.5s", "2m", "750us", "100ns". A bare number is rejected so units are never guessed.
//
//   auto d = crashkit::parse_duration("--ready-timeout", "5s");  // Result<nanoseconds>
//   fmt::print("{}", crashkit::format_duration(*d));              // "5s"
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "crashkit/harness/result.hpp"

namespace crashkit {

using Duration = std::chrono::nanoseconds;
using Clock = std::chrono::steady_clock;

// `what` names the option or key in the error message. Values past 10^18 ns (31 years) are
// refused, so a Duration from text never overflows in nanoseconds or added to the clock.
Result<Duration> parse_duration(std::string_view what, std::string_view text);

// The longest timeout a cell accepts (--ready/--stop/--command-timeout): 24 days, below the
// 24.8 days (2^31 ms) that poll(2)'s int timeout holds. A single poll of a wait that has no
// loop of its own is then never handed a wrapped value (4294968s wrapped to 0.7 s).
inline constexpr Duration kLongestTimeout = std::chrono::hours(24 * 24);

// The timeout to give poll(2) for a wait with `left` to go: whole milliseconds rounded up (it
// never wakes before the deadline), 0 once nothing is left, at most INT_MAX; a longer wait
// polls again until its deadline. Every Duration handed to poll() goes through this.
int poll_timeout_ms(Duration left);

// Shortest exact-enough form: "5s", "200ms", "1.25ms", "830us".
std::string format_duration(Duration d);

}  // namespace crashkit
