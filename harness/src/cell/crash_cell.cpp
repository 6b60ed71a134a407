// The crash-plan cell: arm CRASHKIT_PLAN on the first start (points crossed by the workload)
// or on the restart after a SIGKILL (points crossed only in recovery), tell the planned crash
// (X_CRASHKIT_FIRED) from an unexpected one, then restart clean and check. Phases, in order:
// prepare, plan_first_start (+ plan_workload), plan_kill, plan_recovery_crash (recovery plans
// only), recover_and_check.
#include <fmt/ranges.h>
#include <signal.h>

#include <algorithm>
#include <variant>

#include "cell_run.hpp"
#include "crashkit/crash_plan.hpp"

namespace crashkit::detail {

// What a crash-plan cell carries from phase to phase.
struct PlanRun {
  CellResult result;
  CycleResult cycle;  // a crash plan runs one cycle
  std::vector<CrashRule> rules;
  bool on_restart = false;  // armed on the restart (recovery points), not on the first start
  bool fired = false;       // a planned point reported X_CRASHKIT_FIRED from an armed start
  std::optional<Daemon> daemon;
  int next_start = 1;  // the start number of the clean restart
};

bool fired_planned(const NotifyState& s, const std::vector<CrashRule>& rules) {
  for (const auto& f : s.fired) {
    auto at = f.rfind('@');
    for (const auto& r : rules)
      if (f.compare(0, at, r.point) == 0 && at == r.point.size()) return true;
  }
  return false;
}

namespace {

std::string crossings_note(const CrossingCounts& counts, const std::vector<CrashRule>& rules) {
  std::string out;
  for (const auto& r : rules) {
    auto it = counts.find(r.point);
    out += fmt::format("{}{} crossed {} time(s)", out.empty() ? "" : ", ", r.point,
                       it == counts.end() ? 0 : it->second);
  }
  return out;
}

// "a@1, b@2", or "7 fires (a@1 ... g@3)" past three.
std::string fires_note(const std::vector<std::string>& fired) {
  if (fired.size() <= 3) return fmt::format("{}", fmt::join(fired, ", "));
  return fmt::format("{} fires ({} ... {})", fired.size(), fired.front(), fired.back());
}

// Exit code kPlanErrorExit before READY: the daemon's crash-point runtime refused CRASHKIT_PLAN.
std::optional<Verdict> plan_rejected(const std::optional<ExitStatus>& status,
                                     const std::string& why) {
  if (status && status->exited_with(kPlanErrorExit))
    return Verdict{Outcome::harness_error, "the daemon rejected CRASHKIT_PLAN: " + why};
  return std::nullopt;
}

}  // namespace

CellResult CellRun::run_crash_plan() {
  PlanRun p;
  p.result.run_dir = run_.root;
  p.rules = std::get<std::vector<CrashRule>>(parse_crash_plan(spec_.fault.plan));
  p.on_restart = spec_.fault.on_restart;
  if (auto verdict = plan_phases(p)) return end_on(p.result, p.cycle, std::move(*verdict));
  p.result.cycles.push_back(p.cycle);
  return finish(p.result, Outcome::pass,
                fmt::format("{} fired, recovered, every check held", fires_note(p.result.fired)));
}

// The crash-plan cell phase by phase; nullopt when it passed.
std::optional<Verdict> CellRun::plan_phases(PlanRun& p) {
  if (auto v = prepare()) return v;
  if (auto v = plan_first_start(p)) return v;
  if (auto v = plan_kill(p)) return v;
  if (p.on_restart) {
    if (auto v = plan_recovery_crash(p)) return v;
  }
  if (auto v = recover_and_check(0, p.next_start, p.cycle, p.daemon)) return v;
  stop_clean(*p.daemon, 1);
  return std::nullopt;
}

// Drains the receiver (the daemon may have reported the fire while the workload ran), keeps
// every X_CRASHKIT_FIRED value, and tells whether a planned point fired in an armed start.
bool CellRun::planned_fire_seen(PlanRun& p, bool armed) {
  rx_.drain();
  for (const auto& x : rx_.state().fired)
    if (std::find(p.result.fired.begin(), p.result.fired.end(), x) == p.result.fired.end())
      p.result.fired.push_back(x);
  return armed && fired_planned(rx_.state(), p.rules);
}

// Start 0, armed unless the plan targets recovery: READY, then the workload. nullopt: go on
// to the kill (the plan fired, or the plan waits for the restart).
std::optional<Verdict> CellRun::plan_first_start(PlanRun& p) {
  const bool armed = !p.on_restart;
  auto first = start(0, 0, armed ? Arm::plan : Arm::none);
  if (!first) return Verdict{Outcome::harness_error, first.error().message};
  p.daemon.emplace(std::move(*first));
  Duration elapsed{};
  std::optional<ExitStatus> status;
  auto not_ready = await_ready(*p.daemon, &elapsed, &status);
  p.fired = planned_fire_seen(p, armed);
  if (not_ready) {
    if (p.fired) return std::nullopt;  // the plan ended the daemon before READY
    if (auto v = plan_rejected(status, *not_ready)) return v;
    return did_not_get_ready("before any fault: " + *not_ready);
  }
  p.result.first_ready = elapsed;
  if (auto v = plan_workload(p, armed)) return v;
  if (armed && !p.fired) return plan_missed(p);
  return std::nullopt;
}

std::optional<Verdict> CellRun::plan_workload(PlanRun& p, bool armed) {
  if (!spec_.workload) return std::nullopt;
  if (auto v = net_on(0)) return v;
  auto w = run_command(*spec_.workload, 0, "workload.0.log", &rx_);
  net_off();
  if (!w) return Verdict{Outcome::harness_error, w.error().message};
  p.fired = planned_fire_seen(p, armed);
  // A workload that fails because the planned fault hit the daemon is expected; one that
  // fails with nothing fired is a broken set-up, unless the daemon died under it.
  if (!w->status.success() && !p.fired && !died_under_workload(*p.daemon))
    return Verdict{Outcome::harness_error, fmt::format("cycle 0: workload {}", w->describe())};
  return std::nullopt;
}

// The armed first start ran its workload and nothing planned fired.
Verdict CellRun::plan_missed(PlanRun& p) {
  if (!p.daemon->alive())
    return {Outcome::unexpected_exit,
            fmt::format("cycle 0: daemon died where no crash was planned: {}",
                        how_it_ended(*p.daemon))};
  p.result.armed_crossings = read_crash_counters(counters_path(0, 0));
  stop_clean(*p.daemon, 0);
  return {Outcome::fault_not_reached,
          fmt::format("planned crossing not reached: {}",
                      crossings_note(p.result.armed_crossings, p.rules))};
}

// SIGKILL after the first start, then the offline checks.
std::optional<Verdict> CellRun::plan_kill(PlanRun& p) {
  if (!p.on_restart) p.result.armed_crossings = read_crash_counters(counters_path(0, 0));
  // A plan whose action did not end the daemon (error, delay, throw caught) is followed by
  // SIGKILL; recovery-targeted plans need the SIGKILL to leave work for recovery.
  p.cycle.fault_status = p.daemon->kill().status;
  p.daemon.reset();
  say(fault_line(0, p.cycle));
  if (p.fired || !p.on_restart)
    if (auto v = cut_power(0, p.cycle)) return v;
  if (auto v = disk_release()) return v;
  return run_checks(spec_.check_offline, 0, "offline");
}

// The restart armed, so the plan fires inside recovery; then the offline checks again.
std::optional<Verdict> CellRun::plan_recovery_crash(PlanRun& p) {
  auto armed = start(1, p.next_start, Arm::plan);
  if (!armed) return Verdict{Outcome::harness_error, armed.error().message};
  p.daemon.emplace(std::move(*armed));
  std::optional<ExitStatus> status;
  auto not_ready = await_ready(*p.daemon, nullptr, &status);
  p.fired = planned_fire_seen(p, true);
  p.result.armed_crossings = read_crash_counters(counters_path(1, p.next_start));
  if (!p.fired) {
    if (not_ready) {
      if (auto v = plan_rejected(status, *not_ready)) return v;
      return did_not_get_ready("cycle 0: restart before the planned recovery crash: " + *not_ready);
    }
    stop_clean(*p.daemon, 1);
    return Verdict{Outcome::fault_not_reached,
                   fmt::format("planned recovery crossing not reached: {}",
                               crossings_note(p.result.armed_crossings, p.rules))};
  }
  p.daemon->kill();
  p.daemon.reset();
  say("cycle 0: crash inside recovery fired");
  if (auto v = cut_power(0, p.cycle)) return v;
  if (auto v = run_checks(spec_.check_offline, 0, "offline")) return v;
  ++p.next_start;
  return std::nullopt;
}

}  // namespace crashkit::detail
