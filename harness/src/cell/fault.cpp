// Fault: the --fault grammar (sigterm, sigkill, sigkill-after=D, powerloss..., @PICK for a
// group) and its spellings for repro lines and reports.
#include <fmt/format.h>

#include <algorithm>
#include <charconv>

#include "crashkit/crash_plan.hpp"
#include "crashkit/crash_protocol.hpp"  // printable_text
#include "crashkit/harness/cell.hpp"

namespace crashkit {

namespace {

Result<ReplicaPick> parse_pick(std::string_view fault, std::string_view at) {
  const std::pair<std::string_view, ReplicaPick::Kind> named[] = {
      {"all", ReplicaPick::Kind::all},
      {"minority", ReplicaPick::Kind::minority},
      {"majority", ReplicaPick::Kind::majority},
      {"leader", ReplicaPick::Kind::leader}};
  for (auto [name, kind] : named)
    if (at == name) return ReplicaPick{.kind = kind, .text = std::string(at)};
  int index = 0;
  auto [end, ec] = std::from_chars(at.data(), at.data() + at.size(), index);
  if (ec == std::errc{} && end == at.data() + at.size() && index >= 0 && index < 1000)
    return ReplicaPick{.kind = ReplicaPick::Kind::one, .index = index, .text = std::string(at)};
  return usage_error(fmt::format(
      "--fault '{}': unknown replicas '@{}'; use @INDEX (from 0), @minority, @majority, @all or "
      "@leader",
      printable_text(fault, 60), printable_text(at, 60)));
}

}  // namespace

std::optional<int> replica_index(std::string_view text) {
  if (text.empty() || text.size() > 3 ||
      text.find_first_not_of("0123456789") != std::string_view::npos)
    return std::nullopt;
  int i = 0;
  for (char c : text) i = i * 10 + (c - '0');
  return i;
}

Result<Fault> Fault::parse(std::string_view text) {
  if (auto at = text.find('@'); at != std::string_view::npos) {
    auto f = parse(text.substr(0, at));
    if (!f) return f.error();
    if (f->kind == Kind::crash_plan || f->kind == Kind::none)
      return usage_error(fmt::format("--fault '{}': {} does not name replicas (@...)",
                                     printable_text(text, 60),
                                     f->kind == Kind::none ? "none" : "a crash plan"));
    auto pick = parse_pick(text, text.substr(at + 1));
    if (!pick) return pick.error();
    f->at = *pick;
    return f;
  }
  using powerloss::CrashState;
  const std::pair<std::string_view, Fault> exact[] = {
      {"none", {Kind::none}},
      {"sigterm", {Kind::sigterm}},
      {"sigkill", {Kind::sigkill}},
      {"powerloss", {Kind::powerloss}},
      {"powerloss(drop)", {Kind::powerloss}},
      {"powerloss(subset)", {.kind = Kind::powerloss, .crash_state = CrashState::subset}},
      {"powerloss(torn)", {.kind = Kind::powerloss, .crash_state = CrashState::torn}}};
  for (const auto& [name, f] : exact)
    if (text == name) return f;
  for (auto [prefix, kind] :
       {std::pair{std::string_view("sigkill-after="), Kind::sigkill_after},
        std::pair{std::string_view("powerloss-after="), Kind::powerloss_after}}) {
    if (!text.starts_with(prefix)) continue;
    auto d = parse_duration(fmt::format("--fault {}", prefix.substr(0, prefix.size() - 1)),
                            text.substr(prefix.size()));
    if (!d) return d.error();
    return Fault{.kind = kind, .after = *d};
  }
  return usage_error(fmt::format(
      "--fault '{}': unknown fault; use sigterm, sigkill, sigkill-after=DURATION, powerloss, "
      "powerloss(subset), powerloss(torn), powerloss-after=DURATION or none",
      printable_text(text, 60)));
}

bool Fault::loses_power() const {
  if (kind == Kind::powerloss || kind == Kind::powerloss_after) return true;
  return kind == Kind::crash_plan && plan.find("=powerloss") != std::string::npos;
}

Result<Fault> Fault::crash(std::string_view plan, bool on_restart) {
  auto parsed = parse_crash_plan(plan);
  if (auto* err = std::get_if<CrashPlanError>(&parsed))
    return usage_error("--plan: " + err->message);
  Fault f;
  f.kind = Kind::crash_plan;
  f.plan = format_crash_plan(std::get<std::vector<CrashRule>>(parsed));
  f.on_restart = on_restart;
  return f;
}

std::string Fault::to_string() const {
  if (at.text.empty()) return kind_text();
  if (kind == Kind::crash_plan) return kind_text() + " in replica " + at.text;
  return kind_text() + "@" + at.text;
}

std::string Fault::kind_text() const {
  switch (kind) {
    case Kind::crash_plan:
      return (on_restart ? "recovery crash " : "crash ") + plan;
    case Kind::none:
      return "none";
    case Kind::sigterm:
      return "sigterm";
    case Kind::sigkill:
      return "sigkill";
    case Kind::sigkill_after:
      return "sigkill-after=" + format_duration(after);
    case Kind::powerloss:
      return crash_state == powerloss::CrashState::drop     ? "powerloss"
             : crash_state == powerloss::CrashState::subset ? "powerloss(subset)"
                                                            : "powerloss(torn)";
    case Kind::powerloss_after:
      return "powerloss-after=" + format_duration(after);
  }
  return "sigkill";
}

}  // namespace crashkit
