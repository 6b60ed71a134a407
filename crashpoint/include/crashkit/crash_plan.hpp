// The crash plan grammar (CRASHKIT_PLAN), shared by the daemon runtime and the harness.
//
//   plan    := rule (';' rule)*
//   rule    := POINT '@' trigger '=' action
//   trigger := N        the Nth crossing only          (N >= 1)
//            | N '+'    every crossing from the Nth on
//            | '%' K    every Kth crossing: K, 2K, 3K, ...
//   action  := kill | abort | segv | throw | hang | pause | exit(CODE)
//            | powerloss            SIGKILL here; the harness then undoes what was not durable
//            | error(ENAME)          ENOSPC, EIO, ... (CRASHKIT_FAULT sites only)
//            | delay(DURATION)       e.g. 200ms, 1s, 50us
//
//   auto p = crashkit::parse_crash_plan("wal.append.write@3=error(ENOSPC);wal.sync@1+=kill");
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace crashkit {

// Exit status of a daemon whose CRASHKIT_PLAN is invalid (bad syntax or unknown point).
inline constexpr int kPlanErrorExit = 86;

struct CrashRule {
  enum class Trigger { at, from, every };
  enum class Action { kill, abort, segv, throw_, hang, pause, exit, error, delay, powerloss };
  std::string point;
  Trigger trigger = Trigger::at;
  std::uint64_t n = 1;  // at / from: N; every: K
  Action action = Action::kill;
  int code = 0;               // exit code, or errno for error()
  std::int64_t delay_ns = 0;  // delay()

  bool fires_at(std::uint64_t crossing) const;
  std::string to_string() const;  // round-trips through parse_crash_plan
};

struct CrashPlanError {
  std::string message;  // one line: what is wrong, where, and the fix
};

// Parses a whole plan. Each point may appear once.
std::variant<std::vector<CrashRule>, CrashPlanError> parse_crash_plan(std::string_view text);
std::string format_crash_plan(const std::vector<CrashRule>& rules);

// "ENOSPC" -> 28; 0 if unknown. And back: 28 -> "ENOSPC".
int errno_from_name(std::string_view name);
const char* errno_name(int e);
// The action's name in the grammar: "kill", "exit", "error", ... (async-signal-safe).
const char* action_name(CrashRule::Action a);

}  // namespace crashkit
