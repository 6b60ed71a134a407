// Loading and validating a matrix YAML file (yaml-cpp), with FILE:LINE errors.
#include <fmt/format.h>
#include <yaml-cpp/depthguard.h>  // YAML::DeepRecursion
#include <yaml-cpp/yaml.h>

#include <fstream>
#include <set>
#include <tuple>

#include "cell/ready_when.hpp"
#include "crashkit/crash_plan.hpp"
#include "crashkit/crash_protocol.hpp"
#include "crashkit/harness/ledger.hpp"
#include "crashkit/harness/matrix.hpp"
#include "crashkit/harness/unit_file.hpp"
#include "matrix/flow_nesting.hpp"

namespace crashkit {
namespace {

namespace fs = std::filesystem;

// A matrix spec is a few KiB nested a few levels deep. Both caps are checked before yaml-cpp
// sees the text: it keeps a token per '[' (a 10 MB file of them took 10 s and 2.4 GB).
constexpr std::size_t kMaxSpecBytes = 1 << 20;
constexpr int kMaxFlowNesting = 32;

struct Bad {
  Error error;
};

class SpecReader {
 public:
  explicit SpecReader(fs::path file) : file_(std::move(file)), dir_(file_.parent_path()) {}

  [[noreturn]] void fail(const YAML::Node& at, const std::string& what) const {
    throw Bad{usage_error(fmt::format("{}:{}: {}", file_.string(), at.Mark().line + 1, what))};
  }

  void known_keys(const YAML::Node& map, std::initializer_list<const char*> keys) const {
    if (!map.IsMap()) fail(map, "expected a mapping");
    for (const auto& kv : map) {
      auto k = kv.first.as<std::string>();
      bool ok = false;
      for (const char* key : keys) ok = ok || k == key;
      if (!ok) {
        std::string list;
        for (const char* key : keys) list += (list.empty() ? "" : ", ") + std::string(key);
        fail(kv.first, fmt::format("unknown key '{}' (known: {})", printable_text(k, 60), list));
      }
    }
  }

  std::string scalar(const YAML::Node& n, const char* what) const {
    if (!n.IsScalar()) fail(n, fmt::format("{} must be a single value", what));
    return n.as<std::string>();
  }

  Duration duration(const YAML::Node& n, const char* what) const {
    auto d = parse_duration(what, scalar(n, what));
    if (!d) fail(n, d.error().message);
    return *d;
  }

  // A relative path (containing '/') resolves against the spec file's directory.
  std::string resolve(const std::string& word) const {
    if (word.empty() || word[0] == '/' || word.find('/') == std::string::npos || word[0] == '{')
      return word;
    return (dir_ / word).lexically_normal().string();
  }

  std::vector<std::string> argv(const YAML::Node& n, const char* what) const {
    std::vector<std::string> out;
    if (n.IsScalar()) {
      out.push_back(resolve(n.as<std::string>()));
      return out;
    }
    if (!n.IsSequence() || n.size() == 0) fail(n, fmt::format("{} must be a non-empty list", what));
    for (const auto& x : n) out.push_back(scalar(x, what));
    out[0] = resolve(out[0]);
    return out;
  }

  // A command: a string (a shell line, used as is) or a list (argv, shell-quoted).
  std::string command(const YAML::Node& n, const char* what) const {
    if (n.IsScalar()) return n.as<std::string>();
    std::string line;
    for (const auto& a : argv(n, what)) line += (line.empty() ? "" : " ") + shell_quote(a);
    return line;
  }

  // A check list: commands, or {verify: {get: CMD} | {dump: CMD}} for the ledger verifier.
  std::vector<std::string> checks(const YAML::Node& n, const char* what) const {
    std::vector<std::string> out;
    if (!n.IsSequence()) fail(n, fmt::format("{} must be a list of commands", what));
    for (const auto& c : n) out.push_back(c.IsMap() ? verify_command(c) : command(c, what));
    return out;
  }

  // workload: a command, or {put: CMD, count: N, keys: K, concurrency: C}: `crashkit workload`.
  std::string workload(const YAML::Node& n) const {
    if (!n.IsMap()) return command(n, "workload");
    known_keys(n, {"put", "count", "keys", "concurrency"});
    if (!n["put"]) fail(n, "workload: {...} needs put: a command storing {value} under {key}");
    std::string line = ledger_tool(n) + " workload --ledger {ledger} --put " +
                       shell_quote(command(n["put"], "put"));
    for (auto [key, lo, hi] : {std::tuple{"count", 1, 100000000}, std::tuple{"keys", 0, 1000000},
                               std::tuple{"concurrency", 1, 1024}})
      if (n[key]) line += fmt::format(" --{} {}", key, whole(n[key], key, lo, hi));
    return line;
  }

  std::string verify_command(const YAML::Node& n) const {
    if (n.size() != 1 || !n["verify"] || !n["verify"].IsMap())
      fail(n, "a check is a command or {verify: {get: CMD}} / {verify: {dump: CMD}}");
    const YAML::Node v = n["verify"];
    known_keys(v, {"get", "dump"});
    if (v.size() != 1) fail(v, "verify: give one of get: CMD (one read per key) or dump: CMD");
    const char* how = v["get"] ? "get" : "dump";
    return ledger_tool(n) + " verify --ledger {ledger} --" + how + " " +
           shell_quote(command(v[how], how));
  }

  int whole(const YAML::Node& n, const char* what, int lo, int hi) const {
    int v = 0;
    if (!YAML::convert<int>::decode(n, v) || v < lo || v > hi)
      fail(n, fmt::format("{} must be a whole number from {} to {}", what, lo, hi));
    return v;
  }

  // The crashkit binary that runs `workload` and `verify` for the map forms.
  std::string ledger_tool(const YAML::Node& at) const {
    auto cli = crashkit_cli_path();
    if (!cli) fail(at, cli.error().message);
    return shell_quote(*cli);
  }

  // A fault: 'sigterm', 'sigkill', or a one-key mapping (sigkill: {...}, crash_points: {...}).
  MatrixFault fault(const YAML::Node& n) const {
    MatrixFault f;
    if (n.IsScalar()) {
      auto s = n.as<std::string>();
      if (auto at = s.find('@'); at != std::string::npos) {
        auto parsed = Fault::parse(s);
        if (!parsed) fail(n, parsed.error().message);
        if (parsed->kind == Fault::Kind::sigkill_after)
          fail(n, "in a spec, sigkill during the workload is sigkill: {after: [...], at: ...}");
        f.at = parsed->at;
        s = s.substr(0, at);
      }
      if (s == "sigterm") {
        f.kind = MatrixFault::Kind::sigterm;
      } else if (s == "sigkill") {
        f.kind = MatrixFault::Kind::sigkill;
      } else if (s.starts_with("powerloss")) {
        auto parsed = Fault::parse(s);
        if (!parsed) fail(n, parsed.error().message);
        f.kind = MatrixFault::Kind::powerloss;
        f.powerloss = s;
      } else {
        fail(n, fmt::format("unknown fault '{}' (sigterm, sigkill, sigkill: {{after: [...]}}, "
                            "powerloss, \"powerloss(subset)\", \"powerloss(torn)\", "
                            "powerloss-after=DURATION, crash_points: {{...}})",
                            printable_text(s, 60)));
      }
      return f;
    }
    if (!n.IsMap() || n.size() != 1)
      fail(n, "a fault is 'sigterm', 'sigkill' or a one-key mapping");
    auto key = n.begin()->first.as<std::string>();
    const YAML::Node body = n.begin()->second;
    if (key == "sigkill") return sigkill_fault(body);
    if (key != "crash_points")
      fail(n.begin()->first, fmt::format("unknown fault '{}'", printable_text(key, 60)));
    return crash_points_fault(body);
  }

  // sigkill: {after: DURATION or [DURATION, ...]}
  MatrixFault sigkill_fault(const YAML::Node& body) const {
    MatrixFault f;
    f.kind = MatrixFault::Kind::sigkill;
    known_keys(body, {"after", "at"});
    if (body["at"]) {
      auto parsed = Fault::parse("sigkill@" + scalar(body["at"], "at"));
      if (!parsed) fail(body["at"], parsed.error().message);
      f.at = parsed->at;
    }
    if (body["after"]) {
      const YAML::Node after = body["after"];
      if (after.IsSequence())
        for (const auto& d : after) f.after.push_back(duration(d, "after"));
      else
        f.after.push_back(duration(after, "after"));
    }
    return f;
  }

  // crash_points: {points: ..., crossings: ..., action: ..., phase: ...}
  MatrixFault crash_points_fault(const YAML::Node& body) const {
    MatrixFault f;
    f.kind = MatrixFault::Kind::crash_points;
    known_keys(body, {"points", "crossings", "action", "phase", "replica"});
    if (const YAML::Node r = body["replica"]; r) {
      const int i = whole(r, "replica", 0, 63);
      f.at = ReplicaPick{.kind = ReplicaPick::Kind::one, .index = i, .text = std::to_string(i)};
    }
    if (const YAML::Node p = body["points"]; p) {
      if (p.IsScalar() && p.as<std::string>() == "all") {
      } else if (p.IsSequence()) {
        for (const auto& x : p) f.points.push_back(scalar(x, "points"));
      } else {
        fail(p, "points must be 'all' or a list of point names");
      }
    }
    if (const YAML::Node c = body["crossings"]; c) crossings(c, f);
    if (const YAML::Node a = body["action"]; a) f.action = scalar(a, "action");
    auto probe = parse_crash_plan("x@1=" + f.action);
    if (auto* e = std::get_if<CrashPlanError>(&probe))
      fail(body["action"] ? body["action"] : body,
           "bad action '" + printable_text(f.action, 60) + "': " + e->message);
    if (std::get<std::vector<CrashRule>>(probe).size() != 1)  // "kill;other@1=kill" smuggles a rule
      fail(body["action"],
           "bad action '" + printable_text(f.action, 60) + "': one action, without ';'");
    if (const YAML::Node ph = body["phase"]; ph) {
      auto v = scalar(ph, "phase");
      if (v == "run")
        f.phase = MatrixFault::Phase::run;
      else if (v == "recovery")
        f.phase = MatrixFault::Phase::recovery;
      else if (v != "both")
        fail(ph, "phase must be run, recovery or both");
    }
    return f;
  }

  // crossings: all, [N, ...] or {sample: N}
  void crossings(const YAML::Node& c, MatrixFault& f) const {
    if (c.IsScalar() && c.as<std::string>() == "all") {
    } else if (c.IsSequence()) {
      for (const auto& x : c) {
        std::uint64_t v = 0;
        if (!YAML::convert<std::uint64_t>::decode(x, v) || v == 0)
          fail(x, "crossings are whole numbers >= 1");
        f.crossings.push_back(v);
      }
    } else if (c.IsMap()) {
      known_keys(c, {"sample"});
      // Decoding a missing key throws yaml-cpp's InvalidNode, which has no line.
      if (!c["sample"]) fail(c, "crossings: {sample: N} needs sample, a whole number >= 1");
      std::size_t k = 0;
      if (!YAML::convert<std::size_t>::decode(c["sample"], k) || k == 0)
        fail(c["sample"], "sample must be a whole number >= 1");
      f.sample = k;
    } else {
      fail(c, "crossings must be 'all', a list, or {sample: N}");
    }
  }

  MatrixSpec read(const YAML::Node& root) const {
    known_keys(root, {"target",
                      "ready_timeout",
                      "stop_timeout",
                      "stop_signal",
                      "success_exit_status",
                      "command_timeout",
                      "notify_access",
                      "ready_when",
                      "prepare",
                      "before_start",
                      "workload",
                      "check_offline",
                      "check_online",
                      "env",
                      "user",
                      "unit",
                      "faults",
                      "powerloss_model",
                      "powerloss_scope",
                      "replicas",
                      "peers_format",
                      "leader",
                      "scenarios"});
    MatrixSpec m;
    m.file = file_;
    if (!root["target"]) fail(root, "missing 'target' (the daemon's argv)");
    m.base.target = argv(root["target"], "target");
    if (root["ready_timeout"])
      m.base.ready_timeout = duration(root["ready_timeout"], "ready_timeout");
    if (root["stop_timeout"]) m.base.stop_timeout = duration(root["stop_timeout"], "stop_timeout");
    if (root["stop_signal"]) {
      auto sig = parse_signal("stop_signal", scalar(root["stop_signal"], "stop_signal"));
      if (!sig) fail(root["stop_signal"], sig.error().message);
      m.base.clean_stop.signal = *sig;
    }
    if (const YAML::Node ok = root["success_exit_status"]; ok) {
      std::vector<std::string> words;
      if (ok.IsSequence())
        for (const auto& w : ok) words.push_back(scalar(w, "success_exit_status"));
      else
        words.push_back(scalar(ok, "success_exit_status"));
      for (const auto& w : words)
        if (auto r = m.base.clean_stop.add_success("success_exit_status", w); !r)
          fail(ok, r.error().message);
    }
    if (root["command_timeout"])
      m.base.command_timeout = duration(root["command_timeout"], "command_timeout");
    if (root["notify_access"]) {
      auto v = scalar(root["notify_access"], "notify_access");
      if (v != "main" && v != "all")
        fail(root["notify_access"], "notify_access must be main or all");
      m.base.notify_access = v == "all" ? NotifyAccess::all : NotifyAccess::main;
    }
    if (root["prepare"]) m.base.prepare = command(root["prepare"], "prepare");
    if (root["before_start"]) m.base.before_start = command(root["before_start"], "before_start");
    if (root["ready_when"]) {
      auto text = scalar(root["ready_when"], "ready_when");
      if (auto r = parse_ready_when("ready_when", text); !r)
        fail(root["ready_when"], r.error().message);
      m.base.ready_when = text;
    }
    if (root["workload"]) m.base.workload = workload(root["workload"]);
    if (root["check_offline"])
      m.base.check_offline = checks(root["check_offline"], "check_offline");
    if (root["check_online"]) m.base.check_online = checks(root["check_online"], "check_online");
    if (root["user"]) m.base.user = scalar(root["user"], "user");
    if (root["powerloss_model"]) {
      auto v = scalar(root["powerloss_model"], "powerloss_model");
      if (v != "strict" && v != "ext4")
        fail(root["powerloss_model"], "powerloss_model must be strict or ext4");
      m.base.powerloss_model = v == "ext4" ? powerloss::Model::ext4 : powerloss::Model::strict;
    }
    if (root["powerloss_scope"]) {
      const YAML::Node sc = root["powerloss_scope"];
      if (sc.IsScalar())
        m.base.powerloss_scope.push_back(sc.as<std::string>());
      else if (sc.IsSequence())
        for (const auto& x : sc) m.base.powerloss_scope.push_back(scalar(x, "powerloss_scope"));
      else
        fail(sc, "powerloss_scope must be a directory or a list of directories");
    }
    if (const YAML::Node env = root["env"]; env) {
      if (!env.IsMap()) fail(env, "env must be a mapping KEY: value");
      for (const auto& kv : env)
        m.base.extra_env.push_back(kv.first.as<std::string>() + "=" + scalar(kv.second, "env"));
    }
    if (root["unit"]) m.notes = unit(root, m.base);
    if (root["replicas"]) m.base.replicas = whole(root["replicas"], "replicas", 1, 64);
    if (root["peers_format"]) m.base.peers_format = scalar(root["peers_format"], "peers_format");
    if (root["leader"]) m.base.leader = command(root["leader"], "leader");
    if (root["scenarios"]) m.scenarios = scenarios(root["scenarios"], m.base);
    if (!root["faults"] && !m.scenarios.empty()) return m;
    if (!root["faults"] || !root["faults"].IsSequence() || root["faults"].size() == 0)
      fail(root, "missing 'faults' (a list: sigterm, sigkill, crash_points: {...})");
    for (const auto& f : root["faults"]) {
      m.faults.push_back(fault(f));
      CellSpec probe = m.base;  // a group's pick must name replicas it has
      probe.fault.kind = m.faults.back().kind == MatrixFault::Kind::sigterm ? Fault::Kind::sigterm
                                                                            : Fault::Kind::sigkill;
      probe.fault.at = m.faults.back().at;
      if (m.faults.back().kind == MatrixFault::Kind::crash_points &&
          probe.fault.at.index >= m.base.replicas)
        fail(f, fmt::format("crash_points: replica: {}: there are replicas 0 to {}",
                            probe.fault.at.index, m.base.replicas - 1));
      if (auto e = group_error(probe)) fail(f, e->message);
    }
    if (m.base.replicas > 1)
      for (std::size_t i = 0; i < m.faults.size(); ++i)
        if (m.faults[i].kind == MatrixFault::Kind::crash_points && m.faults[i].at.text.empty())
          fail(root["faults"][i],
               "with replicas: crash points are armed in one replica; name it (replica: I)");
    return m;
  }

  // unit: FILE, the daemon's systemd unit; the spec's own keys win over its settings.
  std::vector<std::string> unit(const YAML::Node& root, CellSpec& base) const {
    const YAML::Node n = root["unit"];
    auto u = read_unit_file(resolve_path(scalar(n, "unit")));
    if (!u) fail(n, u.error().message);
    GivenFlags g;
    g.stop_signal = static_cast<bool>(root["stop_signal"]);
    g.success_exit_status = static_cast<bool>(root["success_exit_status"]);
    g.ready_timeout = static_cast<bool>(root["ready_timeout"]);
    g.stop_timeout = static_cast<bool>(root["stop_timeout"]);
    g.user = static_cast<bool>(root["user"]);
    g.before_start = static_cast<bool>(root["before_start"]);
    g.notify_access = static_cast<bool>(root["notify_access"]);
    auto notes = apply_unit(*u, g, base);
    if (!notes) fail(n, notes.error().message);
    for (auto& note : *notes) note = "unit " + u->file.string() + ": " + note;
    return *notes;
  }

  // scenarios: [{name: NAME, steps: [start, wait_ready, workload, {fault: sigkill@1},
  // {restart: 1 | all}, check, {sleep: 200ms}]}], each checked against the group.
  std::vector<MatrixScenario> scenarios(const YAML::Node& n, const CellSpec& base) const {
    if (!n.IsSequence() || n.size() == 0) fail(n, "scenarios must be a list of {name, steps}");
    std::vector<MatrixScenario> out;
    for (const auto& sc : n) {
      known_keys(sc, {"name", "steps"});
      if (!sc["name"] || !sc["steps"] || !sc["steps"].IsSequence())
        fail(sc, "a scenario needs name: and steps: [...]");
      MatrixScenario m{scalar(sc["name"], "name"), {}};
      for (const auto& st : sc["steps"]) m.steps.push_back(step(st, base));
      CellSpec probe = base;
      probe.steps = m.steps;
      if (auto e = group_error(probe)) fail(sc, e->message);
      out.push_back(std::move(m));
    }
    return out;
  }

  ScenarioStep step(const YAML::Node& n, const CellSpec& base) const {
    using Kind = ScenarioStep::Kind;
    ScenarioStep s;
    if (n.IsScalar()) {
      s.text = n.as<std::string>();
      const std::pair<const char*, Kind> words[] = {{"start", Kind::start},
                                                    {"wait_ready", Kind::wait_ready},
                                                    {"workload", Kind::workload},
                                                    {"check", Kind::check}};
      for (auto [word, kind] : words)
        if (s.text == word) s.kind = kind;
      if (s.text != "start" && s.kind == Kind::start)
        fail(n, fmt::format("unknown step '{}' (start, wait_ready, workload, check, {{fault: "
                            "...}}, {{restart: N|all}}, {{sleep: DURATION}})",
                            printable_text(s.text, 60)));
      if (s.kind == Kind::workload && !base.workload) fail(n, "a workload step needs workload:");
      return s;
    }
    if (!n.IsMap() || n.size() != 1) fail(n, "a step is a word or a one-key mapping");
    const auto key = n.begin()->first.as<std::string>();
    const std::string value = scalar(n.begin()->second, key.c_str());
    s.text = key + ": " + value;
    if (key == "fault") {
      auto f = Fault::parse(value);
      if (!f) fail(n, f.error().message);
      s.kind = Kind::fault;
      s.fault = *f;
    } else if (key == "restart") {
      s.kind = Kind::restart;
      s.replicas = value;
      if (value != "all" && value.find_first_not_of("0123456789") != std::string::npos)
        fail(n, "restart: takes a replica index or all");
    } else if (key == "sleep") {
      s.kind = Kind::sleep;
      s.pause = duration(n.begin()->second, "sleep");
    } else {
      fail(n, fmt::format("unknown step '{}'", printable_text(key, 60)));
    }
    return s;
  }

  // A file named by the spec: relative to the spec's directory.
  fs::path resolve_path(const std::string& p) const {
    return p.empty() || p[0] == '/' ? fs::path(p) : (dir_ / p).lexically_normal();
  }

 private:
  fs::path file_;
  fs::path dir_;
};

// "FILE:LINE: " for a yaml-cpp mark, "FILE: " when it has none (InvalidNode, BadSubscript).
std::string where(const std::filesystem::path& file, const YAML::Mark& mark) {
  if (mark.is_null()) return file.string() + ": ";
  return fmt::format("{}:{}: ", file.string(), mark.line + 1);
}

Error too_big(const std::filesystem::path& file, std::uintmax_t bytes) {
  return usage_error(fmt::format(
      "{}: {} bytes, over the 1 MiB limit for a matrix spec; check the path (a spec is a few KiB)",
      file.string(), bytes));
}

}  // namespace

Result<MatrixSpec> parse_matrix_spec(std::string_view yaml, const std::filesystem::path& file) {
  if (yaml.size() > kMaxSpecBytes) return too_big(file, yaml.size());
  if (int line = line_nested_deeper(yaml, kMaxFlowNesting))
    return usage_error(fmt::format(
        "{}:{}: nested deeper than {} levels of [ ] or {{ }}; a matrix spec needs a few, check "
        "the brackets",
        file.string(), line, kMaxFlowNesting));
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::DeepRecursion& e) {
    return usage_error(where(file, e.mark) +
                       "nested deeper than the YAML parser allows; a matrix spec needs a few "
                       "levels, check the indentation and '- ' markers");
  } catch (const YAML::ParserException& e) {
    return usage_error(where(file, e.mark) + "YAML syntax error: " + printable_text(e.msg));
  }
  try {
    return SpecReader(std::filesystem::absolute(file)).read(root);
  } catch (const Bad& b) {
    return b.error;
  } catch (const YAML::Exception& e) {
    return usage_error(where(file, e.mark) + printable_text(e.msg));
  }
}

Result<MatrixSpec> load_matrix_spec(const std::filesystem::path& file) {
  std::error_code ec;
  if (!fs::is_regular_file(file, ec))
    return usage_error(
        fmt::format("{}: cannot read the matrix file: {}; give the matrix YAML file", file.string(),
                    fs::exists(file, ec) ? "not a regular file (a directory?)" : "no such file"));
  // Never more than one byte past the cap is read, whatever the file's size.
  std::ifstream in(file, std::ios::binary);
  std::string text(kMaxSpecBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (!in.is_open() || in.bad())
    return usage_error(fmt::format(
        "{}: cannot read the matrix file; check the path and its permissions", file.string()));
  text.resize(static_cast<std::size_t>(in.gcount()));
  if (text.size() > kMaxSpecBytes) {
    auto size = fs::file_size(file, ec);
    return too_big(file, ec ? text.size() : size);
  }
  return parse_matrix_spec(text, file);
}

}  // namespace crashkit
