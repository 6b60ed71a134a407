// Importing a daemon's own systemd unit (`crashkit run --unit FILE`): the [Service] settings that
// say how systemd starts, judges and stops it, applied to a CellSpec. The target's command line
// stays the caller's (its data directory differs); flags given on the command line win.
//
//   auto u = read_unit_file("/lib/systemd/system/mariadb.service");  // Result<UnitSettings>
//   if (u) apply_unit(*u, spec);   // KillSignal= -> spec.clean_stop.signal, User= -> spec.user...
//
// Read: Type=, NotifyAccess=, KillSignal=, SuccessExitStatus=, TimeoutStartSec=,
// TimeoutStopSec=, TimeoutSec=, User=, Environment=, ExecStartPre=, Limit*= (a --rlimit for the
// same resource wins; without CAP_SYS_RESOURCE, a hard limit above crashkit's own is lowered to
// it, with a note), with systemd's grammar: comments (# ;), trailing-backslash continuation,
// repeated list settings (an empty assignment resets the list), quoted Environment= words, time
// spans ("90", "5min 20s", "infinity"), and the specifiers %n %N %p %i %I %H %t %T %%. Not read:
// drop-ins, EnvironmentFile= (noted), settings outside [Service].
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "crashkit/harness/cell.hpp"
#include "crashkit/harness/resource_limit.hpp"
#include "crashkit/harness/result.hpp"

namespace crashkit {

struct UnitSettings {
  std::filesystem::path file;
  std::optional<std::string> type, notify_access, kill_signal, user;
  std::optional<std::string> timeout_start, timeout_stop;  // time spans, as written
  std::vector<std::string> success_exit_status;            // each assignment's text
  std::vector<std::string> environment;                    // KEY=VALUE, unquoted
  std::vector<std::string> exec_start_pre;                 // command lines, prefixes kept
  std::vector<ResourceLimit> limits;                       // Limit*=, the last one per name
  std::vector<std::string> notes;  // what was read but cannot apply ("EnvironmentFile= ...")
};

// Errors name FILE:LINE and the setting (usage errors, exit 2).
Result<UnitSettings> read_unit_file(const std::filesystem::path& file);

// Which CellSpec fields the caller set itself (those win over the unit's).
struct GivenFlags {
  bool stop_signal = false, success_exit_status = false, ready_timeout = false,
       stop_timeout = false, user = false, before_start = false, notify_access = false;
};

// Applies the unit to `spec` where `given` leaves room. Adds notes for settings that do not map
// (Type=forking: crashkit still waits for READY=1). Errors name the file and the setting.
Result<std::vector<std::string>> apply_unit(const UnitSettings& u, const GivenFlags& given,
                                            CellSpec& spec);

// systemd's time span ("90" seconds, "5min 20s", "1h", "500ms", "infinity"); 0 and infinity
// (no timeout in systemd) become kLongestTimeout.
Result<Duration> parse_time_span(std::string_view what, std::string_view text);

}  // namespace crashkit
