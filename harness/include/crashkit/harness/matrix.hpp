// The crash matrix: a YAML spec expanded into cells (fault x point x crossing), run in
// parallel, each an ordinary CellSpec. `points: all` / `crossings: all` come from a discovery
// run; sampling is seeded; sharding keeps every Nth cell.
//
//   auto spec = load_matrix_spec("fixtures/kvd/matrix.yaml");       // Result<MatrixSpec>
//   auto cells = expand_matrix(*spec, {.seed = 7});                 // Result<MatrixPlan>
//   auto results = run_matrix(cells->cells, {.jobs = 2});
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "crashkit/harness/cell.hpp"

namespace crashkit {

struct MatrixFault {
  enum class Kind { sigterm, sigkill, crash_points, powerloss, net };
  Kind kind = Kind::sigkill;
  std::string powerloss;                 // powerloss: the --fault spelling, "powerloss(torn)"
  std::vector<Duration> after;           // sigkill: {after: [...]}; empty = after the workload
  std::vector<std::string> points;       // crash_points; empty = all
  std::vector<std::uint64_t> crossings;  // empty = all discovered
  std::optional<std::size_t> sample;     // crossings: {sample: N}
  std::string action = "kill";
  enum class Phase { both, run, recovery };
  Phase phase = Phase::both;
  ReplicaPick at;             // sigterm, sigkill: which replicas of a group ("sigkill@minority")
  std::vector<NetToxic> net;  // net: toxics on during the workload, no process fault
};

// scenarios: [{name: ..., steps: [...]}]: one cell each (docs/replicas.md).
struct MatrixScenario {
  std::string name;
  std::vector<ScenarioStep> steps;
};

// `baseline:` in a spec: how much worse a run may be than its baseline (--baseline) before it
// is a regression. Recovery p50/p99 may grow by the percentage or by `recovery_floor`,
// whichever is larger; cells/s may drop by the percentage.
struct BaselineThresholds {
  double recovery_p50_pct = 25;
  double recovery_p99_pct = 25;
  Duration recovery_floor = std::chrono::milliseconds(2);
  double cells_per_s_pct = 20;
};

struct MatrixSpec {
  std::filesystem::path file;
  CellSpec base;  // target, timeouts, workload, checks, env; fault unset
  std::vector<MatrixFault> faults;
  std::vector<MatrixScenario> scenarios;
  std::vector<std::string> notes;  // from `unit:`: settings read but not applicable
  BaselineThresholds baseline;
};

// Parses and validates. Errors are usage errors "FILE:LINE: what; fix".
Result<MatrixSpec> load_matrix_spec(const std::filesystem::path& file);
// The same from YAML text already read: `file` names it in errors, and relative paths in it
// resolve against its directory. load_matrix_spec reads the file and calls this.
Result<MatrixSpec> parse_matrix_spec(std::string_view yaml, const std::filesystem::path& file);

struct MatrixCell {
  std::string id;  // stable, filter-friendly: "sigkill", "crash.wal_append_write.at_3.kill"
  CellSpec spec;
  std::string point;  // crash cells
  std::uint64_t crossing = 0;
  std::string repro;  // when `crashkit run` cannot say it (scenarios): a `crashkit matrix` line
};

struct MatrixPlan {
  std::vector<MatrixCell> cells;
  std::vector<std::string> uncovered;  // compiled or named points the workload never crossed
  std::uint64_t seed = 0;
  std::size_t total_before_shard = 0;
  std::vector<std::string> notes;  // of the discovery run (e.g. captured output lost)
  unsigned repeat = 1;             // how many times the cells run (`crashkit matrix --repeat`)
};

struct ExpandOptions {
  std::uint64_t seed = 0;
  std::size_t shard_index = 0;
  std::size_t shard_count = 1;
  std::vector<std::string> only;  // --cell: just these cell ids (before sharding)
  CellLog log;
};

// Runs discovery when the spec needs it, then lists the cells of this shard.
Result<MatrixPlan> expand_matrix(const MatrixSpec& spec, const ExpandOptions& options);

struct MatrixResult {
  MatrixCell cell;
  CellResult result;
  Duration elapsed{};
  std::string repro;  // a `crashkit run ...` line that reproduces this cell alone
};

struct RunMatrixOptions {
  unsigned jobs = 1;
  // Called (serialized) as each cell finishes: done, total, the result.
  std::function<void(std::size_t, std::size_t, const MatrixResult&)> on_done;
};

std::vector<MatrixResult> run_matrix(const std::vector<MatrixCell>& cells,
                                     const RunMatrixOptions& options);

// The `crashkit run` command line that runs `spec` alone, shell-quoted.
std::string repro_command(const CellSpec& spec);
// The line that reruns `cell` alone: its own (a scenario's `crashkit matrix SPEC --cell ID`),
// else repro_command().
std::string repro_line(const MatrixCell& cell);
// What the reports call the cell's fault: as `--fault` reads it ("+ net TOXIC..." when network
// toxics are on), or "scenario".
std::string fault_label(const CellSpec& spec);
// POSIX shell quoting of one word.
std::string shell_quote(std::string_view word);

}  // namespace crashkit
