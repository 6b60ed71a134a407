#include "crashkit/harness/outcome.hpp"

namespace crashkit {

std::string_view to_string(Outcome o) {
  switch (o) {
    case Outcome::pass:
      return "pass";
    case Outcome::violation:
      return "violation";
    case Outcome::not_ready:
      return "not_ready";
    case Outcome::unexpected_exit:
      return "unexpected_exit";
    case Outcome::fault_not_reached:
      return "fault_not_reached";
    case Outcome::harness_error:
      return "harness_error";
  }
  return "unknown";
}

std::optional<Outcome> outcome_from_string(std::string_view s) {
  for (auto o : kOutcomes)
    if (to_string(o) == s) return o;
  return std::nullopt;
}

bool is_finding(Outcome o) {
  return o == Outcome::violation || o == Outcome::not_ready || o == Outcome::unexpected_exit;
}

bool needs_attention(Outcome o) {
  return is_finding(o) || o == Outcome::harness_error;
}

int exit_code_for(Outcome o) {
  if (is_finding(o)) return exit_code::finding;
  if (o == Outcome::harness_error) return exit_code::harness_error;
  return exit_code::ok;
}

}  // namespace crashkit
