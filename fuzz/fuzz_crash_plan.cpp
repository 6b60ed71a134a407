// Fuzzes the crash-plan grammar (CRASHKIT_PLAN, `--plan`, a matrix's `action:`), which both the
// daemon-side runtime and the harness parse: parse_crash_plan, format_crash_plan, fires_at.
//
// Properties: a rejection is one line starting "CRASHKIT_PLAN"; an accepted plan has rules
// within the grammar's ranges, formats to a plan that parses to the same rules (the harness
// stores the formatted plan and parses it again when the cell runs: a plan that does not
// survive that would throw std::bad_variant_access there), and that form is a fixed point;
// each trigger fires at its first crossing and where the grammar says around it.
#include <fmt/format.h>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <set>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "crashkit/crash_plan.hpp"
#include "property.hpp"

namespace {

using crashkit::CrashRule;
using crashkit::fuzz::broken;

void check_rule(const CrashRule& r) {
  if (r.point.empty() || r.point.size() > 111)
    broken(fmt::format("plan: point name of {} characters accepted", r.point.size()));
  for (char c : r.point)
    if (c == '@' || c == '=' || c == ';' || c == '(' || c == ')')
      broken(fmt::format("plan: point '{}' holds a grammar character", r.point));
  if (r.n == 0) broken("plan: crossing 0 accepted");
  if (r.action == CrashRule::Action::exit && (r.code < 0 || r.code > 255))
    broken(fmt::format("plan: exit code {} accepted", r.code));
  if (r.action == CrashRule::Action::error &&
      std::string_view(crashkit::errno_name(r.code)) == "E?")
    broken(fmt::format("plan: errno {} without a name accepted", r.code));
  if (r.delay_ns < 0) broken(fmt::format("plan: negative delay {} ns accepted", r.delay_ns));
}

// Where the trigger fires, checked at its first crossing and next to it.
void check_triggers(const CrashRule& r) {
  const std::uint64_t n = r.n;
  const std::uint64_t next = n == std::numeric_limits<std::uint64_t>::max() ? n : n + 1;
  if (!r.fires_at(n))
    broken(fmt::format("plan: {} does not fire at crossing {}", r.to_string(), n));
  if (n > 1 && r.fires_at(n - 1))
    broken(fmt::format("plan: {} fires before crossing {}", r.to_string(), n));
  const bool fires_next = r.fires_at(next);
  const bool should =
      r.trigger == CrashRule::Trigger::from || (r.trigger == CrashRule::Trigger::every && n == 1);
  if (next != n && fires_next != should)
    broken(fmt::format("plan: {} at crossing {}: fires {}", r.to_string(), next, fires_next));
}

bool same_rules(const std::vector<CrashRule>& a, const std::vector<CrashRule>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i].point != b[i].point || a[i].trigger != b[i].trigger || a[i].n != b[i].n ||
        a[i].action != b[i].action || a[i].code != b[i].code || a[i].delay_ns != b[i].delay_ns)
      return false;
  return true;
}

void check_plan(const std::vector<CrashRule>& rules) {
  if (rules.empty()) broken("plan: accepted without rules");
  std::set<std::string> points;
  for (const auto& r : rules) {
    check_rule(r);
    check_triggers(r);
    if (!points.insert(r.point).second) broken("plan: point named twice accepted: " + r.point);
  }
  const std::string formatted = crashkit::format_crash_plan(rules);
  auto again = crashkit::parse_crash_plan(formatted);
  if (const auto* e = std::get_if<crashkit::CrashPlanError>(&again))
    broken(fmt::format("plan: formatted plan '{}' rejected: {}", formatted, e->message));
  const auto& reparsed = std::get<std::vector<CrashRule>>(again);
  if (!same_rules(rules, reparsed))
    broken(fmt::format("plan: formatted plan '{}' parsed to different rules", formatted));
  if (crashkit::format_crash_plan(reparsed) != formatted)
    broken(fmt::format("plan: '{}' is not the canonical form of itself", formatted));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = crashkit::parse_crash_plan(text);
  if (const auto* e = std::get_if<crashkit::CrashPlanError>(&parsed)) {
    crashkit::fuzz::require_one_line_message(e->message, "plan");
    if (!e->message.starts_with("CRASHKIT_PLAN"))
      broken("plan: rejection does not name CRASHKIT_PLAN: " + e->message);
    return 0;
  }
  check_plan(std::get<std::vector<CrashRule>>(parsed));
  return 0;
}
