// The harness-daemon protocol for crash points, shared by both sides. It runs no code before
// main(), so the harness (and anything else) may link it without ever arming itself:
//   - CRASHKIT_PLAN, the plan grammar            <crashkit/crash_plan.hpp>
//   - CRASHKIT_COUNTERS, the counters file layout <crashkit/crash_counters.hpp>
//   - X_CRASHKIT_FIRED=<point>@<crossing>, sent on NOTIFY_SOCKET before a point acts
//   - which inherited variables belong to a service manager or a cell, not to a child
//
//   sockaddr_un sa; socklen_t len;
//   if (crashkit::unix_address(getenv("NOTIFY_SOCKET"), sa, len)) sendto(fd, ..., &sa, len);
#pragma once

#include <sys/socket.h>
#include <sys/un.h>

#include <charconv>
#include <cstddef>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

#include "crashkit/crash_counters.hpp"
#include "crashkit/crash_plan.hpp"

namespace crashkit {

inline constexpr std::string_view kPlanVariable = "CRASHKIT_PLAN";
inline constexpr std::string_view kCountersVariable = "CRASHKIT_COUNTERS";
inline constexpr std::string_view kFiredKey = "X_CRASHKIT_FIRED";

// CRASHKIT_PLAN and CRASHKIT_COUNTERS: set by the harness for the target of a cell only, never
// inherited by the harness's other children (workload, checks) or by a daemon's workers.
bool is_crash_point_variable(std::string_view key);
// NOTIFY_SOCKET, WATCHDOG_*, LISTEN_*: addressed by a service manager to one process; a child
// of that process must not inherit them (sd_notify from the wrong pid, a foreign watchdog).
bool is_service_manager_variable(std::string_view key);

// Fills a sockaddr_un for an sd_notify-style address: a path, or '@name' for the abstract
// namespace. False if empty or too long. Allocation-free and async-signal-safe.
bool unix_address(std::string_view address, sockaddr_un& out, socklen_t& len);

// Text from the other side (a plan, a notify datagram) as quoted in a one-line error message:
// printable ASCII as is, any other byte (a line break, a NUL, a terminal escape) as \xNN; past
// `max_bytes` of it, "..." instead of the rest.
std::string printable_text(std::string_view text,
                           std::size_t max_bytes = std::numeric_limits<std::size_t>::max());

// A whole decimal number, nothing before or after it, within T's range.
template <typename T>
std::optional<T> parse_number(std::string_view s) {
  T v{};
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
  return v;
}

}  // namespace crashkit
