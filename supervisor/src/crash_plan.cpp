#include "crashkit/crash_plan.hpp"

#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>

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

template <typename T>
bool parse_number(std::string_view s, T& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc{} && p == s.data() + s.size() && !s.empty();
}

bool parse_delay(std::string_view s, std::int64_t& ns) {
  std::size_t i = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
  std::int64_t v = 0;
  if (!parse_number(s.substr(0, i), v)) return false;
  std::string_view unit = s.substr(i);
  std::int64_t mult = unit == "ns"   ? 1
                      : unit == "us" ? 1000
                      : unit == "ms" ? 1000000
                      : unit == "s"  ? 1000000000
                                     : 0;
  if (mult == 0) return false;
  ns = v * mult;
  return true;
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
  switch (action) {
    case Action::kill:
      return s + "kill";
    case Action::abort:
      return s + "abort";
    case Action::segv:
      return s + "segv";
    case Action::throw_:
      return s + "throw";
    case Action::hang:
      return s + "hang";
    case Action::pause:
      return s + "pause";
    case Action::exit:
      return s + "exit(" + std::to_string(code) + ")";
    case Action::error:
      return s + "error(" + errno_name(code) + ")";
    case Action::delay:
      return s + "delay(" + format_delay(delay_ns) + ")";
  }
  return s;
}

std::variant<std::vector<CrashRule>, CrashPlanError> parse_crash_plan(std::string_view text) {
  std::vector<CrashRule> rules;
  auto fail = [&](std::string_view rule, std::string why) {
    return CrashPlanError{"CRASHKIT_PLAN rule '" + std::string(rule) + "': " + why +
                          "; write POINT@N=ACTION, POINT@N+=ACTION or POINT@%K=ACTION, rules "
                          "separated by ';'"};
  };
  if (text.empty()) return CrashPlanError{"CRASHKIT_PLAN is empty; give at least one rule"};
  while (!text.empty()) {
    auto semi = text.find(';');
    std::string_view r = text.substr(0, semi);
    text = semi == std::string_view::npos ? std::string_view{} : text.substr(semi + 1);
    if (r.empty()) continue;
    auto at = r.rfind('@');
    auto eq = r.find('=', at == std::string_view::npos ? 0 : at);
    if (at == std::string_view::npos || at == 0 || eq == std::string_view::npos)
      return fail(r, "missing '@' or '='");
    CrashRule rule;
    rule.point = std::string(r.substr(0, at));
    for (char c : rule.point)
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-'))
        return fail(r, "bad character in point name");
    if (rule.point.size() >= 112) return fail(r, "point name longer than 111 characters");
    std::string_view trig = r.substr(at + 1, eq - at - 1);
    if (trig.starts_with('%')) {
      rule.trigger = CrashRule::Trigger::every;
      trig.remove_prefix(1);
    } else if (trig.ends_with('+')) {
      rule.trigger = CrashRule::Trigger::from;
      trig.remove_suffix(1);
    }
    if (!parse_number(trig, rule.n) || rule.n == 0)
      return fail(r, "crossing must be a whole number >= 1");
    std::string_view act = r.substr(eq + 1);
    std::string_view arg;
    auto paren = act.find('(');
    if (paren != std::string_view::npos) {
      if (!act.ends_with(')')) return fail(r, "unclosed '(' in action");
      arg = act.substr(paren + 1, act.size() - paren - 2);
      act = act.substr(0, paren);
    }
    using A = CrashRule::Action;
    bool needs_arg = act == "exit" || act == "error" || act == "delay";
    if (needs_arg == arg.empty() && (needs_arg || paren != std::string_view::npos))
      return fail(r, needs_arg
                         ? "action needs an argument, e.g. exit(3), error(ENOSPC), delay(200ms)"
                         : "action takes no argument");
    if (act == "kill")
      rule.action = A::kill;
    else if (act == "abort")
      rule.action = A::abort;
    else if (act == "segv")
      rule.action = A::segv;
    else if (act == "throw")
      rule.action = A::throw_;
    else if (act == "hang")
      rule.action = A::hang;
    else if (act == "pause")
      rule.action = A::pause;
    else if (act == "exit") {
      rule.action = A::exit;
      if (!parse_number(arg, rule.code) || rule.code < 0 || rule.code > 255)
        return fail(r, "exit code must be 0-255");
    } else if (act == "error") {
      rule.action = A::error;
      rule.code = errno_from_name(arg);
      if (rule.code == 0)
        return fail(r, "unknown errno name '" + std::string(arg) + "' (e.g. ENOSPC, EIO)");
    } else if (act == "delay") {
      rule.action = A::delay;
      if (!parse_delay(arg, rule.delay_ns)) return fail(r, "bad delay, e.g. delay(200ms)");
    } else {
      return fail(r, "unknown action '" + std::string(act) +
                         "' (kill, abort, segv, throw, hang, pause, exit(N), error(E), delay(D))");
    }
    for (const auto& other : rules)
      if (other.point == rule.point) return fail(r, "point named twice");
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
