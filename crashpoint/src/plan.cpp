#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <iterator>

#include "crashkit/crash_plan.hpp"
#include "crashkit/crash_protocol.hpp"

namespace crashkit {
namespace {

struct ErrnoName {
  const char* name;
  int value;
};
constexpr ErrnoName kErrnos[] = {
    {"ENOSPC", ENOSPC},         {"EIO", EIO},       {"EDQUOT", EDQUOT},
    {"EROFS", EROFS},           {"EFBIG", EFBIG},   {"EINTR", EINTR},
    {"EAGAIN", EAGAIN},         {"ENOMEM", ENOMEM}, {"EACCES", EACCES},
    {"EPERM", EPERM},           {"ENOENT", ENOENT}, {"EEXIST", EEXIST},
    {"EBADF", EBADF},           {"EINVAL", EINVAL}, {"EMFILE", EMFILE},
    {"ENFILE", ENFILE},         {"EPIPE", EPIPE},   {"ETIMEDOUT", ETIMEDOUT},
    {"ECONNRESET", ECONNRESET},
};

bool parse_delay(std::string_view s, std::int64_t& ns) {
  std::size_t i = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
  auto v = parse_number<std::int64_t>(s.substr(0, i));
  if (!v) return false;
  std::string_view unit = s.substr(i);
  std::int64_t mult = unit == "ns"   ? 1
                      : unit == "us" ? 1000
                      : unit == "ms" ? 1000000
                      : unit == "s"  ? 1000000000
                                     : 0;
  if (mult == 0) return false;
  // Checked: a delay that does not fit in 64-bit nanoseconds is rejected, never wrapped.
  return !__builtin_mul_overflow(*v, mult, &ns);
}

std::string format_delay(std::int64_t ns) {
  if (ns % 1000000000 == 0) return std::to_string(ns / 1000000000) + "s";
  if (ns % 1000000 == 0) return std::to_string(ns / 1000000) + "ms";
  if (ns % 1000 == 0) return std::to_string(ns / 1000) + "us";
  return std::to_string(ns) + "ns";
}

}  // namespace

int errno_from_name(std::string_view name) {
  for (const auto& e : kErrnos)
    if (name == e.name) return e.value;
  return 0;
}

const char* errno_name(int e) {
  for (const auto& x : kErrnos)
    if (x.value == e) return x.name;
  return "E?";
}

const char* action_name(CrashRule::Action a) {
  using A = CrashRule::Action;
  switch (a) {
    case A::kill:
      return "kill";
    case A::powerloss:
      return "powerloss";
    case A::abort:
      return "abort";
    case A::segv:
      return "segv";
    case A::throw_:
      return "throw";
    case A::hang:
      return "hang";
    case A::pause:
      return "pause";
    case A::exit:
      return "exit";
    case A::error:
      return "error";
    case A::delay:
      return "delay";
  }
  return "?";
}

bool CrashRule::fires_at(std::uint64_t crossing) const {
  switch (trigger) {
    case Trigger::at:
      return crossing == n;
    case Trigger::from:
      return crossing >= n;
    case Trigger::every:
      return crossing % n == 0;
  }
  return false;
}

std::string CrashRule::to_string() const {
  std::string s = point + "@";
  if (trigger == Trigger::every) s += "%";
  s += std::to_string(n);
  if (trigger == Trigger::from) s += "+";
  s += "=";
  s += action_name(action);
  switch (action) {
    case Action::exit:
      return s + "(" + std::to_string(code) + ")";
    case Action::error:
      return s + "(" + errno_name(code) + ")";
    case Action::delay:
      return s + "(" + format_delay(delay_ns) + ")";
    default:
      return s;
  }
}

namespace {

// Fills rule.trigger and rule.n from "N", "N+" or "%K"; an error text, or empty.
std::string parse_trigger(std::string_view trig, CrashRule& rule) {
  if (trig.starts_with('%')) {
    rule.trigger = CrashRule::Trigger::every;
    trig.remove_prefix(1);
  } else if (trig.ends_with('+')) {
    rule.trigger = CrashRule::Trigger::from;
    trig.remove_suffix(1);
  }
  auto n = parse_number<std::uint64_t>(trig);
  if (!n || *n == 0) return "crossing must be a whole number >= 1";
  rule.n = *n;
  return {};
}

// Fills rule.action and its argument from "kill", "exit(3)", ...; an error text, or empty.
std::string parse_action(std::string_view act, CrashRule& rule) {
  using A = CrashRule::Action;
  std::string_view arg;
  const auto paren = act.find('(');
  if (paren != std::string_view::npos) {
    if (!act.ends_with(')')) return "unclosed '(' in action";
    arg = act.substr(paren + 1, act.size() - paren - 2);
    act = act.substr(0, paren);
  }
  constexpr A kAll[] = {A::kill,  A::abort, A::segv,  A::throw_, A::hang,
                        A::pause, A::exit,  A::error, A::delay,  A::powerloss};
  const auto* found =
      std::find_if(std::begin(kAll), std::end(kAll), [&](A a) { return act == action_name(a); });
  if (found == std::end(kAll))
    return "unknown action '" + printable_text(act) +
           "' (kill, abort, segv, throw, hang, pause, exit(N), error(E), delay(D), powerloss)";
  rule.action = *found;
  const bool needs_arg =
      rule.action == A::exit || rule.action == A::error || rule.action == A::delay;
  if (needs_arg && arg.empty())
    return "action needs an argument, e.g. exit(3), error(ENOSPC), delay(200ms)";
  if (!needs_arg && paren != std::string_view::npos) return "action takes no argument";
  if (rule.action == A::exit) {
    auto code = parse_number<int>(arg);
    if (!code || *code < 0 || *code > 255) return "exit code must be 0-255";
    rule.code = *code;
  } else if (rule.action == A::error) {
    rule.code = errno_from_name(arg);
    if (rule.code == 0)
      return "unknown errno name '" + printable_text(arg) + "' (e.g. ENOSPC, EIO)";
  } else if (rule.action == A::delay && !parse_delay(arg, rule.delay_ns)) {
    return "bad delay, e.g. delay(200ms), at most 292 years";
  }
  return {};
}

// One rule, "POINT@TRIGGER=ACTION"; an error text, or empty.
std::string parse_rule(std::string_view r, CrashRule& rule) {
  const auto at = r.rfind('@');
  const auto eq = r.find('=', at == std::string_view::npos ? 0 : at);
  if (at == std::string_view::npos || at == 0 || eq == std::string_view::npos)
    return "missing '@' or '='";
  rule.point = std::string(r.substr(0, at));
  for (char c : rule.point)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-'))
      return "bad character in point name";
  if (rule.point.size() >= 112) return "point name longer than 111 characters";
  if (auto why = parse_trigger(r.substr(at + 1, eq - at - 1), rule); !why.empty()) return why;
  return parse_action(r.substr(eq + 1), rule);
}

}  // namespace

std::variant<std::vector<CrashRule>, CrashPlanError> parse_crash_plan(std::string_view text) {
  if (text.empty()) return CrashPlanError{"CRASHKIT_PLAN is empty; give at least one rule"};
  std::vector<CrashRule> rules;
  while (!text.empty()) {
    const auto semi = text.find(';');
    const std::string_view r = text.substr(0, semi);
    text = semi == std::string_view::npos ? std::string_view{} : text.substr(semi + 1);
    if (r.empty()) continue;
    CrashRule rule;
    std::string why = parse_rule(r, rule);
    for (const auto& other : rules)
      if (why.empty() && other.point == rule.point) why = "point named twice";
    if (!why.empty())
      return CrashPlanError{"CRASHKIT_PLAN rule '" + printable_text(r) + "': " + why +
                            "; write POINT@N=ACTION, POINT@N+=ACTION or POINT@%K=ACTION, rules "
                            "separated by ';'"};
    rules.push_back(std::move(rule));
  }
  if (rules.empty()) return CrashPlanError{"CRASHKIT_PLAN has no rules"};
  return rules;
}

std::string format_crash_plan(const std::vector<CrashRule>& rules) {
  std::string s;
  for (const auto& r : rules) {
    if (!s.empty()) s += ';';
    s += r.to_string();
  }
  return s;
}

}  // namespace crashkit
