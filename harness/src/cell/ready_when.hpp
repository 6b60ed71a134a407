// Internal: --ready-when, readiness for daemons that do not speak sd_notify. Not installed.
//
//   auto r = parse_ready_when("--ready-when", "tcp:127.0.0.1:6379");  // Result<ReadyWhen>
//   std::string why;
//   bool up = r->kind != ReadyWhen::Kind::command && can_connect(*r, &why);
#pragma once

#include <string>
#include <string_view>

#include "crashkit/harness/result.hpp"

namespace crashkit {

struct ReadyWhen {
  enum class Kind { tcp, unix_socket, command };
  Kind kind = Kind::tcp;
  std::string where;  // "HOST:PORT", a socket path, or a shell command (placeholders applied)
};

// "tcp:HOST:PORT", "unix:PATH" or "cmd:COMMAND"; a usage error naming `option` otherwise.
// Placeholders may appear anywhere; a numeric PORT is checked to be 1-65535.
Result<ReadyWhen> parse_ready_when(std::string_view option, std::string_view text);

// One connection attempt (tcp, unix_socket), bounded at 200 ms; `why` says why not.
bool can_connect(const ReadyWhen& r, std::string* why);

}  // namespace crashkit
