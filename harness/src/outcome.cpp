#include "crashkit/harness/outcome.hpp"

#include <array>
#include <utility>

namespace crashkit {
namespace {
constexpr std::array<std::pair<Outcome, std::string_view>, 6> kNames{{
    {Outcome::pass, "pass"},
    {Outcome::violation, "violation"},
    {Outcome::not_ready, "not_ready"},
    {Outcome::unexpected_exit, "unexpected_exit"},
    {Outcome::fault_not_reached, "fault_not_reached"},
    {Outcome::harness_error, "harness_error"},
}};
}  // namespace

std::string_view to_string(Outcome o) {
  for (auto [value, name] : kNames)
    if (value == o) return name;
  return "unknown";
}

std::optional<Outcome> outcome_from_string(std::string_view s) {
  for (auto [value, name] : kNames)
    if (name == s) return value;
  return std::nullopt;
}

bool is_finding(Outcome o) {
  return o == Outcome::violation || o == Outcome::not_ready || o == Outcome::unexpected_exit;
}

int exit_code_for(Outcome o) {
  if (is_finding(o)) return exit_code::finding;
  if (o == Outcome::harness_error) return exit_code::harness_error;
  return exit_code::ok;
}

}  // namespace crashkit
