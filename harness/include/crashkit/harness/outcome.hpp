// Typed cell outcomes and the CLI exit codes they map to (DESIGN.md section 4).
// Every kill-and-verify run ends in exactly one Outcome plus a one-line reason.
//
//   Outcome o = Outcome::violation;
//   if (is_finding(o)) return exit_code_for(o);  // 1
#pragma once

#include <array>
#include <optional>
#include <string_view>

namespace crashkit {

enum class Outcome {
  pass,               // fault happened, restart reached READY, every checker held
  violation,          // a checker failed: acknowledged data lost or state corrupted
  not_ready,          // a start (first or after a fault) never reached READY: hung or exited
  unexpected_exit,    // after READY, the daemon died where no fault was planned, or its stop
                      // was not clean
  fault_not_reached,  // the planned crossing never happened
  harness_error,      // the harness itself failed
};

// Every Outcome, in the order reports list them.
inline constexpr std::array<Outcome, 6> kOutcomes = {Outcome::pass,
                                                     Outcome::violation,
                                                     Outcome::not_ready,
                                                     Outcome::unexpected_exit,
                                                     Outcome::fault_not_reached,
                                                     Outcome::harness_error};

namespace exit_code {
inline constexpr int ok = 0;             // no findings
inline constexpr int finding = 1;        // at least one finding
inline constexpr int usage = 2;          // usage or spec error
inline constexpr int harness_error = 3;  // infrastructure failure
}  // namespace exit_code

std::string_view to_string(Outcome o);
std::optional<Outcome> outcome_from_string(std::string_view s);
bool is_finding(Outcome o);
// Listed under "findings" in the reports and keeps its run dir: a finding or a harness error.
bool needs_attention(Outcome o);
int exit_code_for(Outcome o);

}  // namespace crashkit
