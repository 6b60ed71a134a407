// Loading and validating a matrix YAML file (yaml-cpp), with FILE:LINE errors.
#include <fmt/format.h>
#include <yaml-cpp/depthguard.h>  // YAML::DeepRecursion
#include <yaml-cpp/yaml.h>

#include <fstream>
#include <set>
#include <tuple>

#include "cell/net_run.hpp"
#include "cell/ready_when.hpp"
#include "crashkit/crash_plan.hpp"
#include "crashkit/crash_protocol.hpp"
#include "crashkit/harness/ledger.hpp"
#include "crashkit/harness/matrix.hpp"
#include "crashkit/harness/unit_file.hpp"
#include "matrix/flow_nesting.hpp"
#include "matrix/spec_reader.hpp"

namespace crashkit {
namespace {

namespace fs = std::filesystem;

// A matrix spec is a few KiB nested a few levels deep. Both caps are checked before yaml-cpp
// sees the text: it keeps a token per '[' (a 10 MB file of them took 10 s and 2.4 GB).
constexpr std::size_t kMaxSpecBytes = 1 << 20;
constexpr int kMaxFlowNesting = 32;

}  // namespace

namespace detail {

MatrixFault SpecReader::fault(const YAML::Node& n) const {
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
                          "powerloss-after=DURATION, crash_points: {{...}}, net: LINK:TOXIC)",
                          printable_text(s, 60)));
    }
    return f;
  }
  if (!n.IsMap() || n.size() != 1) fail(n, "a fault is 'sigterm', 'sigkill' or a one-key mapping");
  auto key = n.begin()->first.as<std::string>();
  const YAML::Node body = n.begin()->second;
  if (key == "sigkill") return sigkill_fault(body);
  if (key == "net") return net_fault(body);  // net_spec.cpp
  if (key != "crash_points")
    fail(n.begin()->first, fmt::format("unknown fault '{}'", printable_text(key, 60)));
  return crash_points_fault(body);
}

MatrixFault SpecReader::sigkill_fault(const YAML::Node& body) const {
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

MatrixFault SpecReader::crash_points_fault(const YAML::Node& body) const {
  MatrixFault f;
  f.kind = MatrixFault::Kind::crash_points;
  known_keys(body, {"points", "crossings", "action", "phase", "replica"});
  if (const YAML::Node r = body["replica"]; r) {
    const int i = whole(r, "replica", 0, 63);
    f.at = ReplicaPick::replica(i);
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

void SpecReader::crossings(const YAML::Node& c, MatrixFault& f) const {
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

MatrixSpec SpecReader::read(const YAML::Node& root) const {
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
                    "scenarios",
                    "links",
                    "peer_links",
                    "net",
                    "rlimits",
                    "disk_full",
                    "memory",
                    "baseline"});
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
    if (v != "main" && v != "all") fail(root["notify_access"], "notify_access must be main or all");
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
  if (root["check_offline"]) m.base.check_offline = checks(root["check_offline"], "check_offline");
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
  m.baseline = baseline(root["baseline"]);  // baseline_spec.cpp
  resources(root, m.base);  // resource_spec.cpp; before unit: its limits win over Limit*=
  if (root["unit"]) m.notes = unit(root, m.base);
  if (root["replicas"]) m.base.replicas = whole(root["replicas"], "replicas", 1, 64);
  if (root["peers_format"]) m.base.peers_format = scalar(root["peers_format"], "peers_format");
  if (root["leader"]) m.base.leader = command(root["leader"], "leader");
  network(root, m.base);  // net_spec.cpp
  if (root["scenarios"]) m.scenarios = scenarios(root["scenarios"], m.base);
  if (!root["faults"] && !m.scenarios.empty()) return m;
  if (!root["faults"] || !root["faults"].IsSequence() || root["faults"].size() == 0)
    fail(root, "missing 'faults' (a list: sigterm, sigkill, crash_points: {...})");
  for (const auto& f : root["faults"]) {
    m.faults.push_back(fault(f));
    CellSpec probe = m.base;  // a group's pick must name replicas it has; links must exist
    probe.net.insert(probe.net.end(), m.faults.back().net.begin(), m.faults.back().net.end());
    if (auto e = net_error(probe)) fail(f, e->message);
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

std::vector<std::string> SpecReader::unit(const YAML::Node& root, CellSpec& base) const {
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

}  // namespace detail

namespace {

using detail::Bad;
using detail::SpecReader;

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
