// Reading a systemd unit's [Service] settings (read_unit_file) and applying them to a CellSpec
// (apply_unit). The grammar follows systemd.syntax(7) and systemd.unit(5) for what is read.
#include "crashkit/harness/unit_file.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <map>

#include "crashkit/crash_protocol.hpp"  // parse_number, printable_text

namespace crashkit {
namespace {

std::string trim(std::string_view s) {
  const auto b = s.find_first_not_of(" \t\r");
  if (b == std::string_view::npos) return {};
  return std::string(s.substr(b, s.find_last_not_of(" \t\r") - b + 1));
}

// The unit's name parts for specifiers: "postgresql@15-main.service" -> n, N, p, i.
struct UnitName {
  std::string n, N, p, i;
  explicit UnitName(const std::filesystem::path& f) : n(f.filename().string()) {
    N = n.substr(0, n.rfind('.'));
    const auto at = N.find('@');
    p = N.substr(0, at);
    i = at == std::string::npos ? "" : N.substr(at + 1);
  }
};

Result<std::string> expand_specifiers(const std::string& value, const UnitName& u,
                                      const std::string& where) {
  std::string out;
  for (std::size_t k = 0; k < value.size(); ++k) {
    if (value[k] != '%' || k + 1 == value.size()) {
      out += value[k];
      continue;
    }
    const char c = value[++k];
    char host[256] = "";
    switch (c) {
      case '%':
        out += '%';
        break;
      case 'n':
        out += u.n;
        break;
      case 'N':
        out += u.N;
        break;
      case 'p':
        out += u.p;
        break;
      case 'i':
      case 'I':
        out += u.i;
        break;
      case 'H':
        gethostname(host, sizeof host - 1);
        out += host;
        break;
      case 't':
        out += "/run";
        break;
      case 'T':
        out += "/tmp";
        break;
      default:
        return usage_error(
            fmt::format("{}: specifier %{} is not supported (crashkit knows %n %N "
                        "%p %i %I %H %t %T %%); pass the setting as a flag instead",
                        where, printable_text(std::string(1, c))));
    }
  }
  return out;
}

// Environment= words: whitespace-separated, each optionally in double or single quotes, with
// backslash escapes inside double quotes (systemd.exec(5)).
Result<std::vector<std::string>> environment_words(const std::string& value,
                                                   const std::string& where) {
  std::vector<std::string> words;
  std::size_t k = 0;
  while (k < value.size()) {
    while (k < value.size() && (value[k] == ' ' || value[k] == '\t')) ++k;
    if (k == value.size()) break;
    std::string w;
    while (k < value.size() && value[k] != ' ' && value[k] != '\t') {
      const char q = value[k];
      if (q != '"' && q != '\'') {
        w += value[k++];
        continue;
      }
      const auto end = value.find(q, k + 1);
      if (end == std::string::npos)
        return usage_error(fmt::format("{}: unterminated quote", where));
      for (std::size_t j = k + 1; j < end; ++j) {
        if (q == '"' && value[j] == '\\' && j + 1 < end) ++j;
        w += value[j];
      }
      k = end + 1;
    }
    if (w.find('=') == std::string::npos || w.front() == '=')
      return usage_error(fmt::format("{}: '{}' is not KEY=VALUE", where, printable_text(w)));
    words.push_back(std::move(w));
  }
  return words;
}

// Logical lines of [Service]: (line number, key, value), continuations joined.
Result<std::vector<std::tuple<int, std::string, std::string>>> service_lines(
    const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in)
    return usage_error(
        fmt::format("--unit {}: cannot read it; give the path of a .service file", file.string()));
  std::vector<std::tuple<int, std::string, std::string>> out;
  std::string section, line, logical;
  int number = 0, first = 0;
  while (std::getline(in, line)) {
    ++number;
    std::string t = trim(line);
    if (logical.empty() && (t.empty() || t[0] == '#' || t[0] == ';')) continue;
    if (!logical.empty() && (t.rfind('#', 0) == 0 || t.rfind(';', 0) == 0)) continue;
    if (logical.empty()) first = number;
    if (!t.empty() && t.back() == '\\') {
      logical += trim(t.substr(0, t.size() - 1)) + " ";
      continue;
    }
    logical += t;
    if (logical.front() == '[') {
      section = logical;
    } else if (section == "[Service]") {
      const auto eq = logical.find('=');
      if (eq == std::string::npos)
        return usage_error(fmt::format("{}:{}: not KEY=VALUE: '{}'", file.string(), first,
                                       printable_text(logical)));
      out.emplace_back(first, trim(logical.substr(0, eq)), trim(logical.substr(eq + 1)));
    }
    logical.clear();
  }
  return out;
}

}  // namespace

Result<UnitSettings> read_unit_file(const std::filesystem::path& file) {
  auto lines = service_lines(file);
  if (!lines) return lines.error();
  UnitSettings u;
  u.file = file;
  const UnitName name(file);
  for (const auto& [number, key, raw] : *lines) {
    const std::string where = fmt::format("{}:{}: {}=", file.string(), number, key);
    auto value = expand_specifiers(raw, name, where);
    if (!value) return value.error();
    const std::string& v = *value;
    if (key == "Type")
      u.type = v;
    else if (key == "NotifyAccess")
      u.notify_access = v;
    else if (auto name = resource_limit_name(key); !name.empty()) {
      auto l = parse_resource_limit(where, fmt::format("{}={}", name, v));
      if (!l) return l.error();
      std::erase_if(u.limits, [&](const ResourceLimit& x) { return x.resource == l->resource; });
      u.limits.push_back(*l);
    } else if (key == "KillSignal")
      u.kill_signal = v;
    else if (key == "User")
      u.user = v;
    else if (key == "TimeoutStartSec")
      u.timeout_start = v;
    else if (key == "TimeoutStopSec")
      u.timeout_stop = v;
    else if (key == "TimeoutSec")
      u.timeout_start = u.timeout_stop = v;
    else if (key == "SuccessExitStatus") {
      if (v.empty())
        u.success_exit_status.clear();
      else
        u.success_exit_status.push_back(v);
    } else if (key == "ExecStartPre") {
      if (v.empty())
        u.exec_start_pre.clear();
      else
        u.exec_start_pre.push_back(v);
    } else if (key == "Environment") {
      if (v.empty()) {
        u.environment.clear();
        continue;
      }
      auto words = environment_words(v, where);
      if (!words) return words.error();
      u.environment.insert(u.environment.end(), words->begin(), words->end());
    } else if (key == "EnvironmentFile") {
      u.notes.push_back(
          fmt::format("EnvironmentFile={} is not read; pass what the daemon needs "
                      "from it on its command line",
                      v));
    }
  }
  return u;
}

Result<Duration> parse_time_span(std::string_view what, std::string_view text) {
  static const std::map<std::string, Duration> kUnits = {
      {"us", std::chrono::microseconds(1)}, {"usec", std::chrono::microseconds(1)},
      {"ms", std::chrono::milliseconds(1)}, {"msec", std::chrono::milliseconds(1)},
      {"s", std::chrono::seconds(1)},       {"sec", std::chrono::seconds(1)},
      {"second", std::chrono::seconds(1)},  {"seconds", std::chrono::seconds(1)},
      {"m", std::chrono::minutes(1)},       {"min", std::chrono::minutes(1)},
      {"minute", std::chrono::minutes(1)},  {"minutes", std::chrono::minutes(1)},
      {"h", std::chrono::hours(1)},         {"hr", std::chrono::hours(1)},
      {"hour", std::chrono::hours(1)},      {"hours", std::chrono::hours(1)},
      {"d", std::chrono::hours(24)},        {"day", std::chrono::hours(24)},
      {"days", std::chrono::hours(24)},     {"w", std::chrono::hours(24 * 7)},
      {"week", std::chrono::hours(24 * 7)}, {"weeks", std::chrono::hours(24 * 7)}};
  const std::string t = trim(text);
  if (t == "infinity") return kLongestTimeout;
  auto bad = [&] {
    return usage_error(
        fmt::format("{} '{}': not a systemd time span (\"90\", \"5min 20s\", "
                    "\"infinity\")",
                    what, printable_text(t)));
  };
  if (t.empty()) return bad();
  Duration total{};
  std::size_t k = 0;
  while (k < t.size()) {
    while (k < t.size() && t[k] == ' ') ++k;
    const std::size_t digits = k;
    while (k < t.size() && std::isdigit(static_cast<unsigned char>(t[k]))) ++k;
    auto n = parse_number<std::uint32_t>(std::string_view(t).substr(digits, k - digits));
    if (!n) return bad();
    while (k < t.size() && t[k] == ' ') ++k;  // "2 h" is a time span too
    const std::size_t unit = k;
    while (k < t.size() && std::isalpha(static_cast<unsigned char>(t[k]))) ++k;
    const std::string u = t.substr(unit, k - unit);
    const auto it = kUnits.find(u.empty() ? "s" : u);
    if (it == kUnits.end()) return bad();
    if (*n > kLongestTimeout / it->second) return kLongestTimeout;  // and no overflow
    total += *n * it->second;
    if (total > kLongestTimeout) return kLongestTimeout;
  }
  return total == Duration::zero() ? kLongestTimeout : total;  // 0: no timeout, as in systemd
}

namespace {

// ExecStartPre= lines as one shell command: each in turn, stopping at the first failure unless
// its "-" prefix says a failure is ignored ("+", "!" and "!!" only change privileges: dropped).
Result<std::string> before_start_command(const UnitSettings& u) {
  std::string out;
  for (std::string cmd : u.exec_start_pre) {
    bool ignore_failure = false;
    while (!cmd.empty() && std::string_view("-+!:").find(cmd.front()) != std::string_view::npos) {
      ignore_failure = ignore_failure || cmd.front() == '-';
      cmd.erase(0, 1);
    }
    if (!cmd.empty() && cmd.front() == '@')
      return usage_error(
          fmt::format("{}: ExecStartPre={}: the @ prefix (a different argv[0]) is "
                      "not supported; give --before-start instead",
                      u.file.string(), printable_text(cmd)));
    out += (out.empty() ? "" : " && ") +
           (ignore_failure ? "{ " + cmd + "; } || true" : "{ " + cmd + "; }");
  }
  return out;
}

}  // namespace

Result<std::vector<std::string>> apply_unit(const UnitSettings& u, const GivenFlags& given,
                                            CellSpec& spec) {
  const std::string f = u.file.string();
  std::vector<std::string> notes = u.notes;
  if (u.type && *u.type != "notify" && *u.type != "notify-reload")
    notes.push_back(
        fmt::format("Type={}: crashkit still waits for READY=1 from the command line "
                    "you gave (--ready-when for a daemon without sd_notify)",
                    *u.type));
  if (u.notify_access && !given.notify_access) {
    if (*u.notify_access == "none")
      return usage_error(
          fmt::format("{}: NotifyAccess=none: crashkit needs READY=1; give "
                      "--notify-access or --ready-when",
                      f));
    spec.notify_access = *u.notify_access == "all" ? NotifyAccess::all : NotifyAccess::main;
  }
  if (u.kill_signal && !given.stop_signal) {
    auto sig = parse_signal(f + ": KillSignal=", *u.kill_signal);
    if (!sig) return sig.error();
    spec.clean_stop.signal = *sig;
  }
  if (!given.success_exit_status)
    for (const auto& list : u.success_exit_status)
      if (auto ok = spec.clean_stop.add_success(f + ": SuccessExitStatus=", list); !ok)
        return ok.error();
  for (auto [text, field, key, is_given] :
       {std::tuple{&u.timeout_start, &spec.ready_timeout, "TimeoutStartSec=", given.ready_timeout},
        std::tuple{&u.timeout_stop, &spec.stop_timeout, "TimeoutStopSec=", given.stop_timeout}}) {
    if (!*text || is_given) continue;
    auto d = parse_time_span(f + ": " + key, **text);
    if (!d) return d.error();
    *field = *d;
  }
  if (u.user && !given.user) spec.user = *u.user;
  for (const auto& kv : u.environment) {
    const std::string key = kv.substr(0, kv.find('=') + 1);
    auto same = [&](const std::string& e) { return e.rfind(key, 0) == 0; };
    if (std::none_of(spec.extra_env.begin(), spec.extra_env.end(), same))
      spec.extra_env.push_back(kv);
  }
  for (auto l : u.limits) {
    auto same = [&](const ResourceLimit& x) { return x.resource == l.resource; };
    if (std::any_of(spec.rlimits.begin(), spec.rlimits.end(), same)) continue;  // --rlimit's
    if (auto ceiling = hard_limit_ceiling(l)) {
      notes.push_back(
          fmt::format("Limit{}: lowered to crashkit's own hard limit {} (raising it "
                      "needs CAP_SYS_RESOURCE)",
                      l.text, *ceiling));
      l.hard = *ceiling;
      l.soft = std::min(l.soft, l.hard);
      l.text = fmt::format("{}={}:{}", l.text.substr(0, l.text.find('=')), l.soft, l.hard);
    }
    spec.rlimits.push_back(l);
  }
  if (!u.exec_start_pre.empty() && !given.before_start) {
    auto cmd = before_start_command(u);
    if (!cmd) return cmd.error();
    spec.before_start = *cmd;
  }
  return notes;
}

}  // namespace crashkit
