// A cell: one kill-and-verify run. Start the target, wait for READY, run the workload, apply
// the fault, check offline, restart, wait for READY, check online; repeat for N cycles. It
// ends in exactly one Outcome with a one-line reason (DESIGN.md section 4).
//
//   CellSpec spec{.target = {"kvd", "--data-dir", "{data_dir}"},
//                 .fault = *Fault::parse("sigkill")};
//   auto r = run_cell(spec, [](std::string_view line) { fmt::print("{}\n", line); });
//   if (r) return exit_code_for(r->outcome);
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "crashkit/harness/clean_stop.hpp"
#include "crashkit/harness/disk_full.hpp"
#include "crashkit/harness/duration.hpp"
#include "crashkit/harness/exit_status.hpp"
#include "crashkit/harness/net_fault.hpp"
#include "crashkit/harness/notify_receiver.hpp"
#include "crashkit/harness/outcome.hpp"
#include "crashkit/harness/resource_limit.hpp"
#include "crashkit/harness/result.hpp"
#include "crashkit/powerloss_rollback.hpp"

namespace crashkit {

// Which replicas of a group a fault hits (docs/replicas.md): "@1" one by index, "@minority"
// floor((N-1)/2) and "@majority" floor(N/2)+1 of them (a seeded choice), "@all", "@leader" (the
// index the spec's leader command prints). Without "@": all.
struct ReplicaPick {
  enum class Kind { all, one, minority, majority, leader };
  Kind kind = Kind::all;
  int index = 0;     // Kind::one
  std::string text;  // as written after '@', empty when none was

  static ReplicaPick replica(int i) { return {Kind::one, i, std::to_string(i)}; }  // "@I"
};

// A replica index as written ("2", in `--link client=2`, `isolate: 2`, `restart: 2`): 1 to 3
// digits; nullopt otherwise. The caller checks it against the group's size.
std::optional<int> replica_index(std::string_view text);

struct Fault {
  // none: no process fault; the workload (under --net toxics) and the checks against the
  // running daemon, then a clean stop.
  enum class Kind { sigterm, sigkill, sigkill_after, crash_plan, powerloss, powerloss_after, none };
  Kind kind = Kind::sigkill;
  Duration after{};         // for sigkill_after, powerloss_after
  std::string plan;         // for crash_plan: a CRASHKIT_PLAN (see <crashkit/crash_plan.hpp>)
  bool on_restart = false;  // crash_plan: arm on the restart after a SIGKILL (recovery points)
  powerloss::CrashState crash_state = powerloss::CrashState::drop;  // powerloss*
  ReplicaPick at;  // sigterm, sigkill, sigkill_after in a group: which replicas

  // "none", "sigterm", "sigkill", "sigkill-after=200ms", "powerloss", "powerloss(subset)",
  // "powerloss(torn)", "powerloss-after=200ms" (docs/power-loss.md); each signal fault may end
  // in "@1", "@minority", "@majority", "@all" or "@leader" (docs/replicas.md).
  static Result<Fault> parse(std::string_view text);
  // A crash plan, validated against the grammar.
  static Result<Fault> crash(std::string_view plan, bool on_restart);
  std::string to_string() const;  // as parse() reads it, "@..." included
  std::string kind_text() const;  // without the "@..."
  // Power-loss cells: the target runs under the journal shim, and after the SIGKILL whatever
  // it never made durable is undone before the restart. Also a plan with a `powerloss` action.
  bool loses_power() const;
};

// One step of a scenario (docs/replicas.md): an ordered list of what a cross product of
// faults cannot say, e.g. kill one replica, run the workload while it is down, restart it.
struct ScenarioStep {
  enum class Kind { start, wait_ready, workload, fault, restart, check, sleep, net };
  Kind kind = Kind::start;
  NetStep net;           // Kind::net: toxics, a partition, or heal (docs/network.md)
  Fault fault;           // Kind::fault: sigterm, sigkill or powerloss with a pick ("sigkill@1")
  std::string replicas;  // Kind::restart: an index, or "all" (every replica that is down)
  Duration pause{};      // Kind::sleep
  std::string text;      // as written, for the step log
};

struct CellSpec {
  std::vector<std::string> target;  // argv; placeholders allowed
  Fault fault;
  int cycles = 1;
  std::optional<std::string> prepare;  // once, before the first start (e.g. initdb)
  // Before every start, as systemd's ExecStartPre= (e.g. removing a stale unix socket).
  std::optional<std::string> before_start;
  std::optional<std::string> workload;
  std::vector<std::string> check_offline;  // run while the daemon is down
  std::vector<std::string> check_online;   // run against the restarted daemon
  Duration ready_timeout = std::chrono::seconds(10);
  // Readiness without sd_notify: "tcp:HOST:PORT", "unix:PATH" or "cmd:COMMAND", polled with
  // backoff instead of waiting for READY=1 (weaker: see Daemon::wait_ready_by).
  std::optional<std::string> ready_when;
  Duration stop_timeout = std::chrono::seconds(10);
  CleanStop clean_stop;  // the stop signal, and what counts as a clean exit (systemd's rules)
  Duration command_timeout = std::chrono::minutes(10);
  NotifyAccess notify_access = NotifyAccess::main;
  std::filesystem::path run_dir;  // empty: a fresh temporary directory
  bool keep = false;              // keep the run dir even when the cell passes
  std::optional<std::string> user;
  std::size_t capture_limit = 8 << 20;
  std::vector<std::string> extra_env;  // "KEY=VALUE" for every child
  // setrlimit for the target only (--rlimit, docs/resource-limits.md); commands are unlimited.
  std::vector<ResourceLimit> rlimits;
  // A really full disk for the data dir (--disk-full, docs/resource-limits.md): single-daemon
  // cells with a signal fault or a crash plan.
  std::optional<DiskFull> disk_full;
  // A memory cgroup limit in bytes for the target's tree (--memory, docs/resource-limits.md);
  // an OOM kill is named first in a finding's reason.
  std::optional<std::uint64_t> memory;
  // Power-loss cells only.
  powerloss::Model powerloss_model = powerloss::Model::strict;
  std::vector<std::string> powerloss_scope;  // dirs whose files lose power; empty: {data_dir}
  std::uint64_t seed = 1;  // powerloss(subset|torn): which writes survive; @minority: which
  // A group of replicas (docs/replicas.md): N copies of the target, each with its own run dir,
  // data dir, notify socket and ports ({replica}, {port}, {peer_port}, {addr:I}, {peers}, ...).
  // Run as a group when replicas > 1 or the fault names replicas ("sigkill@1").
  int replicas = 1;
  std::string peers_format = "{peer_addr}";  // one entry of {peers} / {members}
  std::optional<std::string> leader;         // prints the leader's index (for @leader)
  // Network faults (docs/network.md): proxied links ({proxy:NAME}), a proxy in front of every
  // replica's peer port ({peer_addr} names it), and toxics on while each workload runs.
  std::vector<NetLink> links;
  bool peer_links = false;
  std::vector<NetToxic> net;
  // A scenario: these steps, in order, instead of the fault's cycles (a group of `replicas`).
  std::vector<ScenarioStep> steps;
};

// Run as a group of replicas (run_cell's group flow)?
inline bool is_group(const CellSpec& spec) {
  return spec.replicas > 1 || !spec.fault.at.text.empty() || !spec.steps.empty();
}

// Does the cell cut power, by its fault or by a scenario step's? Then every start of the target
// runs under the journal shim.
inline bool loses_power(const CellSpec& spec) {
  for (const auto& step : spec.steps)
    if (step.kind == ScenarioStep::Kind::fault && step.fault.loses_power()) return true;
  return spec.fault.loses_power();
}

// What is wrong with a group's spec (a size out of 1..64, a pick naming replicas it lacks, a
// fault groups do not take yet), as a usage error; nullopt when nothing is.
std::optional<Error> group_error(const CellSpec& spec);

struct CycleResult {
  int cycle = 0;
  Outcome outcome = Outcome::pass;
  std::string reason;
  std::optional<ExitStatus> fault_status;  // how the daemon ended under the fault
  std::optional<Duration> recovery;        // restart -> READY
  std::string powerloss;                   // power-loss cells: what the rollback undid, one line
  std::vector<int> hit;                    // groups: the replicas the fault hit
  std::vector<Duration> recoveries;        // groups: restart -> READY of each, in `hit` order
};

using CrossingCounts = std::map<std::string, std::uint64_t>;

struct CellResult {
  Outcome outcome = Outcome::pass;
  std::string reason;
  std::vector<CycleResult> cycles;
  std::optional<Duration> first_ready;  // initial start -> READY
  std::filesystem::path run_dir;
  bool kept = false;
  NotifyCounters notify;
  std::vector<std::string> fired;  // X_CRASHKIT_FIRED values seen, "point@crossing"
  CrossingCounts armed_crossings;  // crossings counted in the armed start (crash plans)
  // Lines worth reporting that are not findings, e.g. "cycle 3: 2 process(es) outlived the
  // daemon's clean exit; killed". Kept whatever the outcome.
  std::vector<std::string> notes;

  // Restart -> READY of the last cycle; empty when the daemon never came back. The one
  // recovery time a cell reports (JSON, HTML, gtest property).
  std::optional<Duration> last_recovery() const {
    return cycles.empty() ? std::nullopt : cycles.back().recovery;
  }
};

using CellLog = std::function<void(std::string_view line)>;

// Usage problems found before anything runs (missing target, bad run dir, unknown user)
// come back as an Error; everything after the first spawn is an Outcome in the CellResult.
Result<CellResult> run_cell(const CellSpec& spec, const CellLog& log = {});

// A discovery run: start, workload, SIGKILL, restart (recovery), clean stop, with crossing
// counters on. `run` counts the first start and the workload; `recovery` the restart. When it
// fails, its run dir is kept and the error ends with "; run dir kept: PATH".
struct Discovery {
  CrossingCounts run;
  CrossingCounts recovery;
  std::filesystem::path run_dir;
  bool kept = false;  // run_dir was kept (--keep, or not ours); a failed discovery keeps it too
  std::vector<std::string> notes;  // as CellResult::notes (e.g. captured output lost)
};
Result<Discovery> discover(const CellSpec& spec, const CellLog& log = {});

}  // namespace crashkit
