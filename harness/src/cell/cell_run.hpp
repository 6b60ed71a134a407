// Internal: the moving parts of one cell, shared by the signal-fault flow (cell.cpp), the
// crash-plan flow (crash_cell.cpp) and discovery (discovery.cpp). Not installed.
#pragma once

#include <fmt/format.h>
#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cell/disk_full.hpp"
#include "cell/net_run.hpp"
#include "cell/run_dir.hpp"
#include "crashkit/crash_plan.hpp"
#include "crashkit/crash_protocol.hpp"
#include "crashkit/harness/cell.hpp"
#include "crashkit/harness/child.hpp"
#include "crashkit/harness/containment.hpp"
#include "crashkit/harness/daemon.hpp"
#include "crashkit/harness/matrix.hpp"  // shell_quote
#include "crashkit/harness/placeholders.hpp"
#include "process/memory_cgroup.hpp"
#include "process/shell_command.hpp"

namespace crashkit::detail {

// How a cell ended when it did not pass: the Outcome and its one-line reason. A phase returns
// std::optional<Verdict>: nullopt means "go on to the next phase".
struct Verdict {
  Outcome outcome;
  std::string reason;
};

// What a start of the target arms in its crash-point runtime.
enum class Arm {
  none,      // a plain start
  counters,  // CRASHKIT_COUNTERS only: crossings are counted (discovery)
  plan,      // CRASHKIT_PLAN and CRASHKIT_COUNTERS: the crash plan fires
};

struct PlanRun;  // crash_cell.cpp: what a crash-plan cell carries from phase to phase

// crash_cell.cpp: did a point of the plan report X_CRASHKIT_FIRED to this receiver?
bool fired_planned(const NotifyState& s, const std::vector<CrashRule>& rules);

// One member of a group (group_cell.cpp): its own run dir (run_dir/replica.I), notify socket,
// containment (stopping one replica never touches another's processes) and ports.
struct ReplicaRun {
  RunDir dir;
  NotifyReceiver rx;
  Containment containment;
  Placeholders::Replica where;
  std::optional<Daemon> daemon;
};

// power_cut.cpp: a statically linked target cannot be a power-loss target (usage error).
std::optional<Error> refuse_static_target(const std::string& exe);

class CellRun {
 public:
  CellRun(const CellSpec& spec, const CellLog& log, RunDir run, std::optional<Credentials> user,
          NotifyReceiver rx)
      : spec_(spec), log_(log), run_(std::move(run)), user_(std::move(user)), rx_(std::move(rx)) {}

  CellResult run_signal_fault();            // cell.cpp
  CellResult run_crash_plan();              // crash_cell.cpp
  CellResult run_group();                   // group_cell.cpp
  CellResult run_group_plan();              // group_plan.cpp
  CellResult run_scenario();                // scenario_cell.cpp
  Result<Discovery> run_discovery();        // discovery.cpp
  Result<Discovery> run_group_discovery();  // group_plan.cpp

  const RunDir& run_dir() const { return run_; }

 private:
  void say(std::string_view line) const {
    if (log_) log_(line);
  }
  // The cell's placeholders; in a group, also every replica's ports and dirs, and when a
  // replica is being handled (replica_), its own {run_dir}, {data_dir}, {port}...
  Placeholders placeholders(int cycle) const {
    Placeholders p{run_.root.string(), run_.data.string(), run_.scratch.string(),
                   run_.ledger.string(), cycle};
    for (const auto& r : replicas_) p.replicas.push_back(r->where);
    p.peers_format = spec_.peers_format;
    if (net_) p.proxies = net_->addresses();
    if (replica_ >= 0) {
      p.replica = replica_;
      p.run_dir = replicas_[replica_]->where.run_dir;
      p.data_dir = replicas_[replica_]->where.data_dir;
    }
    return p;
  }
  static std::string cycle_variable(int cycle) { return "CRASHKIT_CYCLE=" + std::to_string(cycle); }
  std::vector<std::string> env(int cycle, const std::vector<std::string>& more = {}) const {
    const Placeholders p = placeholders(cycle);
    std::vector<std::string> extra = p.apply(spec_.extra_env);
    extra.push_back("CRASHKIT_RUN_DIR=" + p.run_dir);
    extra.push_back("CRASHKIT_DATA_DIR=" + p.data_dir);
    if (replica_ >= 0) extra.push_back("CRASHKIT_REPLICA=" + std::to_string(replica_));
    extra.push_back("CRASHKIT_LEDGER=" + run_.ledger.string());
    extra.push_back(cycle_variable(cycle));
    if (user_) {
      // What a login (and systemd's User=) gives the user, so tools do not use root's home or
      // private TMPDIR (mariadb-install-db fails on the latter). TMPDIR: the run's scratch dir.
      // An `env` entry of the spec wins.
      auto unless_given = [&](const std::string& key, const std::string& value) {
        auto given = [&](const std::string& kv) { return kv.rfind(key + "=", 0) == 0; };
        if (std::none_of(spec_.extra_env.begin(), spec_.extra_env.end(), given))
          extra.push_back(key + "=" + value);
      };
      unless_given("HOME", user_->home);
      unless_given("USER", user_->name);
      unless_given("LOGNAME", user_->name);
      unless_given("TMPDIR", run_.scratch.string());
    }
    extra.insert(extra.end(), more.begin(), more.end());
    return child_environment(extra);
  }
  // `box`: the containment the command's processes join and die with (default: commands_;
  // background_ for a workload that runs while other commands come and go).
  ShellRun shell(const std::string& command, int cycle, const std::string& log_name,
                 const Containment* box = nullptr) const {
    return {placeholders(cycle).apply(command),
            env(cycle),
            user_,
            run_.root,
            run_.artifacts / log_name,
            spec_.command_timeout,
            spec_.capture_limit,
            box != nullptr ? box : &commands_};
  }
  // A run_shell that notes the processes the command left behind (killed).
  Result<ShellResult> run_command(const std::string& command, int cycle,
                                  const std::string& log_name, NotifyReceiver* rx = nullptr) {
    auto r = run_shell(shell(command, cycle, log_name), rx);
    if (r) note_left_behind(*r, log_name);
    return r;
  }
  void note_left_behind(const ShellResult& r, const std::string& log_name) {
    if (r.left_behind > 0)
      note(fmt::format("{} process(es) outlived the command of {}; killed", r.left_behind,
                       log_name));
  }

  // Things worth a line in the report that are not findings; a passing cell keeps them too.
  void note(std::string line) {
    say("note: " + line);
    notes_.push_back(std::move(line));
  }
  // The clean stop (the stop signal, SIGTERM unless --stop-signal), noting helpers that
  // outlived it.
  Daemon::Stop stop_clean(Daemon& d, int cycle) {
    auto s = d.stop(spec_.clean_stop.signal, spec_.stop_timeout);
    if (s.outlived > 0 && !s.escalated && s.status && spec_.clean_stop.clean(*s.status))
      note(fmt::format("cycle {}: {} process(es) outlived the daemon's clean exit; killed", cycle,
                       s.outlived));
    return s;
  }
  std::string counters_path(int cycle, int start_no) const {
    return (run_.root / fmt::format("counters.{}.{}", cycle, start_no)).string();
  }

  // Starts the target for `cycle`; `start_no` numbers the starts (counters and output files).
  Result<Daemon> start(int cycle, int start_no, Arm arm = Arm::none);  // cell_start.cpp

  // --ready-when (ready_when.cpp): the probe instead of READY=1, and the timeout's wording.
  Daemon::ReadyWait wait_ready_when(Daemon& d);
  std::string not_ready_text() const {
    if (!spec_.ready_when)
      return fmt::format(
          "no READY=1 within {} (raise --ready-timeout, or check the daemon speaks sd_notify)",
          format_duration(spec_.ready_timeout));
    return fmt::format("not ready by --ready-when {} within {} (last attempt: {})",
                       shell_quote(ready_when_shown_), format_duration(spec_.ready_timeout),
                       ready_when_last_.empty() ? "none" : ready_when_last_);
  }

  // nullopt when READY came; otherwise why not, one line (ready_when.cpp).
  std::optional<std::string> await_ready(Daemon& d, Duration* elapsed,
                                         std::optional<ExitStatus>* status = nullptr);

  // The checks of `kind` (offline, online) in order; the first that does not hold ends it.
  std::optional<Verdict> run_checks(const std::vector<std::string>& checks, int cycle,
                                    std::string_view kind);  // cell_start.cpp

  // Restart clean after the fault, wait for READY, run the online checks.
  std::optional<Verdict> recover_and_check(int cycle, int start_no, CycleResult& cr,
                                           std::optional<Daemon>& daemon);  // cell_start.cpp

  std::optional<Verdict> apply_signal_fault(Daemon& d, int cycle, CycleResult& cr);  // cell.cpp

  // Power loss (power_cut.cpp): the shim's environment for a start (a fresh journal), and the
  // cut itself after the SIGKILL: undo what was not durable, keep the report as an artifact.
  // nullopt from cut_power: go on (also for cells that do not lose power).
  Result<std::vector<std::string>> power_env(int cycle);
  // `fault`: the one being applied (a scenario step's), by default the cell's.
  std::optional<Verdict> cut_power(int cycle, CycleResult& cr, const Fault* fault = nullptr);
  // The run dir of the start being handled: a replica's own in a group, else the cell's.
  const RunDir& own_dir() const { return replica_ >= 0 ? replicas_[replica_]->dir : run_; }
  std::string journal_dir() const { return (own_dir().root / "powerloss").string(); }
  std::vector<std::string> power_scope(int cycle) const;  // absolute; default {data_dir}

  // The phases of a crash-plan cell, in order (crash_cell.cpp).
  std::optional<Verdict> plan_phases(PlanRun& p);
  std::optional<Verdict> plan_first_start(PlanRun& p);
  std::optional<Verdict> plan_workload(PlanRun& p, bool armed);
  Verdict plan_missed(PlanRun& p);
  std::optional<Verdict> plan_kill(PlanRun& p);
  std::optional<Verdict> plan_recovery_crash(PlanRun& p);
  bool planned_fire_seen(PlanRun& p, bool armed);

  // "cycle 0: sigkill -> killed by SIGKILL": the log line after a fault.
  std::string fault_line(int cycle, const CycleResult& cr) const {
    return fmt::format("cycle {}: {} -> {}", cycle, spec_.fault.to_string(),
                       cr.fault_status ? cr.fault_status->describe() : "exited");
  }
  // A one-line reason's text for a status that may be missing.
  static std::string status_text(const std::optional<ExitStatus>& s) {
    return s ? s->describe() : std::string("status unknown");
  }
  // How the daemon ended, once it surely has (SIGKILL if it has not): for one-line reasons.
  static std::string how_it_ended(Daemon& d) { return status_text(d.kill().status); }
  // No READY after a start, at the first start or after a restart, whether the daemon hung or
  // exited first: not_ready, one meaning for one event (unexpected_exit is a death after READY
  // where no fault was planned, or an unclean stop). The reason says which it was.
  static Verdict did_not_get_ready(std::string reason) {
    return {Outcome::not_ready, std::move(reason)};
  }
  // After a failed workload: did the daemon die under it? A dying daemon closes its sockets
  // before its exit is reported, so it gets a bounded moment to finish before we judge.
  static bool died_under_workload(Daemon& d) {
    d.wait_exit(std::chrono::seconds(1));
    return !d.alive();
  }

  // Ends the cell on a verdict: the cycle records it (a finding after a power cut also says what
  // the cut undid; the report is an artifact), then the result.
  CellResult end_on(CellResult& r, CycleResult& cr, Verdict v) {
    if (!cr.powerloss.empty() && is_finding(v.outcome)) v.reason += "; " + cr.powerloss;
    cr.outcome = v.outcome;
    cr.reason = v.reason;
    r.cycles.push_back(cr);
    return finish(r, v.outcome, std::move(v.reason));
  }

  CellResult finish(CellResult& r, Outcome o, std::string reason) {
    r.outcome = o;
    r.reason = std::move(reason);
    r.notify = rx_.counters();
    r.notes = notes_;
    return r;
  }

  std::optional<Verdict> prepare() {
    if (auto v = setup_net()) return v;
    if (auto v = exhaustion_setup()) return v;
    if (spec_.prepare) {
      auto r = run_command(*spec_.prepare, 0,
                           replica_ < 0 ? "prepare.log" : fmt::format("prepare.r{}.log", replica_));
      if (!r) return Verdict{Outcome::harness_error, r.error().message};
      if (!r->status.success())
        return Verdict{Outcome::harness_error, fmt::format("--prepare {}", r->describe())};
    }
    return disk_fill_now();
  }

  const CellSpec& spec_;
  const CellLog& log_;
  RunDir run_;
  std::optional<Credentials> user_;
  int last_start_cycle_ = 0;      // the cycle of the latest start (--ready-when's placeholders)
  std::string ready_when_last_;   // why the latest --ready-when attempt failed
  std::string ready_when_shown_;  // --ready-when as probed (placeholders applied)
  NotifyReceiver rx_;
  // --memory: destroyed after daemons_ below, whose end kills its members.
  std::optional<MemoryCgroup> memory_;
  // Every start of the target joins daemons_; every command joins commands_. Each is killed
  // whole when its daemon or command ends (docs/architecture.md, "Containment").
  Containment daemons_ = Containment::create();
  Daemon::KeptPipes kept_pipes_;  // the target's stdout/stderr across its starts
  // A lone target's plain starts differ only in CRASHKIT_CYCLE unless a placeholder names
  // {cycle}: the first one's argv and environment, kept for the others (cell_start.cpp).
  struct StartCommand {
    std::vector<std::string> argv, env;
    std::size_t cycle_at = 0;  // env's CRASHKIT_CYCLE entry
  };
  std::optional<StartCommand> plain_start_;
  void start_command(int cycle, const std::vector<std::string>& more, Daemon::Options& o);
  Containment commands_ = Containment::create();
  // A workload left running in the background while a fault lands (sigkill-after): the
  // commands run meanwhile (a leader command) end by killing commands_, never the workload.
  Containment background_ = Containment::create();
  std::vector<std::string> notes_;
  // Groups (group_cell.cpp): the replicas, and the one being started or waited on (-1: none).
  std::vector<std::unique_ptr<ReplicaRun>> replicas_;
  int replica_ = -1;
  // Sets replica_ for a scope (placeholders, start() and journal paths are that replica's).
  struct AsReplica {
    int& slot;
    AsReplica(int& s, int i) : slot(s) { slot = i; }
    ~AsReplica() { slot = -1; }
  };
  std::optional<Verdict> make_replicas();
  std::vector<int> all_replicas() const;
  std::optional<Verdict> prepare_replicas();
  std::optional<Verdict> launch_replicas(int cycle, int start_no, const std::vector<int>& which,
                                         int armed = -1, Arm arm = Arm::plan);
  std::optional<Verdict> await_replicas(const std::vector<int>& which, const std::string& when,
                                        std::vector<Duration>& took, bool restart = false);
  Result<std::vector<int>> pick_replicas(int cycle, const ReplicaPick& at);
  std::optional<Verdict> start_replicas(int cycle, int start_no, const std::vector<int>& which,
                                        CycleResult* cr);
  std::optional<Verdict> group_fault(int cycle, CycleResult& cr);
  std::optional<Verdict> hit_replicas(int cycle, CycleResult& cr, const Fault& fault);
  // Scenarios (scenario_cell.cpp): the steps in order, each logged to artifacts/steps.log.
  std::optional<Verdict> run_step(int at, const ScenarioStep& step, CellResult& result);
  std::optional<Verdict> step_start(int at);
  std::optional<Verdict> step_wait_ready(int at, CellResult& result);
  std::optional<Verdict> step_restart(int at, const ScenarioStep& step, CellResult& result);
  std::optional<Verdict> step_fault(int at, const ScenarioStep& step);
  std::vector<int> awaiting_;  // started by a `start` step, not yet awaited
  std::vector<int> down_replicas() const;
  void step_log(std::string line);
  std::optional<Verdict> all_alive(int cycle);
  std::optional<Verdict> cut_power_of(int cycle, CycleResult& cr, const Fault& fault);
  // Network faults (net_cell.cpp): the proxy, made before the first --prepare.
  std::unique_ptr<NetRun> net_;
  HeldPorts held_ports_;  // the replicas' ports, until the proxies have bound theirs
  std::optional<Verdict> setup_net();
  std::optional<Verdict> net_on(int cycle);  // the spec's toxics, while a workload runs
  void net_off();
  std::optional<Verdict> step_net(int at, const ScenarioStep& step);
  // --disk-full and --memory (exhaustion_cell.cpp). The disk: mounted before --prepare, filled
  // after it or into the first workload, released after every fault so recovery has room,
  // unmounted at the end. The memory cgroup: made before --prepare, every start joins it.
  std::unique_ptr<DiskFill> disk_;
  std::optional<Verdict> exhaustion_setup();
  std::optional<Verdict> disk_fill_now();
  void disk_on(int cycle);
  void disk_workload_started(int cycle, pid_t pgid);
  std::optional<Verdict> disk_release();

 public:
  // Unmounts a --disk-full tmpfs (content kept) and says which way ran; says the memory
  // cgroup's peak and OOM kills, and puts an OOM kill first in a finding's reason.
  void end_exhaustion(CellResult& r);

 private:
  // Crash points in one replica of a group (group_plan.cpp).
  std::optional<Verdict> start_armed_group(int armed, Arm arm);
  std::optional<Verdict> others_alive(int armed);
  std::optional<Verdict> group_plan_run(int armed, const std::vector<CrashRule>& rules,
                                        CellResult& result, CycleResult& cr);
  std::optional<Verdict> group_plan_recovery(int armed, const std::vector<CrashRule>& rules,
                                             CellResult& result, CycleResult& cr);
};

}  // namespace crashkit::detail
