// Private to the matrix reader (matrix_spec.cpp, scenario_spec.cpp): SpecReader turns a
// matrix YAML document into a MatrixSpec, throwing Bad with a FILE:LINE usage error.
#pragma once

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <string>
#include <vector>

#include "cell/ready_when.hpp"
#include "crashkit/crash_protocol.hpp"
#include "crashkit/harness/ledger.hpp"
#include "crashkit/harness/matrix.hpp"

namespace crashkit::detail {

namespace fs = std::filesystem;

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
    known_keys(v, {"get", "dump", "pending_may_land_late"});
    const bool late =
        v["pending_may_land_late"] && boolean(v["pending_may_land_late"], "pending_may_land_late");
    if (v.size() != 1u + (v["pending_may_land_late"] ? 1 : 0) || (!v["get"] && !v["dump"]))
      fail(v, "verify: give one of get: CMD (one read per key) or dump: CMD");
    const char* how = v["get"] ? "get" : "dump";
    return ledger_tool(n) + " verify --ledger {ledger} --" + how + " " +
           shell_quote(command(v[how], how)) + (late ? " --pending-may-land-late" : "");
  }

  bool boolean(const YAML::Node& n, const char* what) const {
    bool b = false;
    if (!YAML::convert<bool>::decode(n, b)) fail(n, fmt::format("{} must be true or false", what));
    return b;
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
  MatrixFault fault(const YAML::Node& n) const;

  // sigkill: {after: DURATION or [DURATION, ...]}
  MatrixFault sigkill_fault(const YAML::Node& body) const;

  // crash_points: {points: ..., crossings: ..., action: ..., phase: ...}
  MatrixFault crash_points_fault(const YAML::Node& body) const;

  // crossings: all, [N, ...] or {sample: N}
  void crossings(const YAML::Node& c, MatrixFault& f) const;

  MatrixSpec read(const YAML::Node& root) const;

  // unit: FILE, the daemon's systemd unit; the spec's own keys win over its settings.
  std::vector<std::string> unit(const YAML::Node& root, CellSpec& base) const;

  // scenarios: [{name: NAME, steps: [start, wait_ready, workload, {fault: sigkill@1},
  // {restart: 1 | all}, check, {sleep: 200ms}]}], each checked against the group.
  std::vector<MatrixScenario> scenarios(const YAML::Node& n, const CellSpec& base) const;

  ScenarioStep step(const YAML::Node& n, const CellSpec& base) const;
  // Network faults (net_spec.cpp): links, peer_links and net (toxics while workloads run).
  void network(const YAML::Node& root, CellSpec& base) const;
  NetStep net_step(const YAML::Node& v, std::string& text, const CellSpec& base) const;
  NetToxic toxic(const YAML::Node& n) const;
  MatrixFault net_fault(const YAML::Node& body) const;
  // Resource exhaustion (resource_spec.cpp): rlimits and disk_full.
  void resources(const YAML::Node& root, CellSpec& base) const;
  void disk_full(const YAML::Node& n, CellSpec& base) const;
  // baseline: {recovery_p99: +25%, ...} (baseline_spec.cpp).
  BaselineThresholds baseline(const YAML::Node& n) const;
  double percent(const YAML::Node& n, const char* what, char sign, double max) const;

  // A file named by the spec: relative to the spec's directory.
  fs::path resolve_path(const std::string& p) const {
    return p.empty() || p[0] == '/' ? fs::path(p) : (dir_ / p).lexically_normal();
  }

 private:
  fs::path file_;
  fs::path dir_;
};

}  // namespace crashkit::detail
