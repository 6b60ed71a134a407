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

// `what` names the option or key in the error message.
Result<Duration> parse_duration(std::string_view what, std::string_view text);

// Shortest exact-enough form: "5s", "200ms", "1.25ms", "830us".
std::string format_duration(Duration d);

}  // namespace crashkit
