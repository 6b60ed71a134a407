// Parsing of one sd_notify datagram: newline-separated KEY=VALUE lines (systemd's
// notify protocol, plus crashkit's X_CRASHKIT_* extensions). Pure and allocation-bounded,
// so it is unit-tested on its own; NotifyReceiver applies the result to a NotifyState.
//
//   auto m = crashkit::parse_notify_datagram("READY=1\nSTATUS=serving");
//   if (m && m->has("READY", "1")) ...
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "crashkit/harness/result.hpp"

namespace crashkit {

// systemd's NOTIFY_BUFFER_MAX: longer datagrams are rejected.
inline constexpr std::size_t kNotifyDatagramMax = 4096;

struct NotifyMessage {
  std::vector<std::pair<std::string, std::string>> fields;  // in datagram order

  // Last value of `key`, if present.
  std::optional<std::string_view> get(std::string_view key) const;
  bool has(std::string_view key, std::string_view value) const;
};

// Rejects (with a reason) embedded NUL, oversize, empty datagrams, lines without '=' or with
// an empty or non [A-Z0-9_] key. Empty lines (a trailing newline) are allowed.
Result<NotifyMessage> parse_notify_datagram(std::string_view datagram);

}  // namespace crashkit
