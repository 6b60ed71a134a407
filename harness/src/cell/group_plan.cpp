// Crash points in one replica of a group (`--plan P --replicas N --plan-replica I`, matrix
// `crash_points: {replica: I, ...}`). Every replica starts; the workload runs against the group.
// A run-phase plan is armed in replica I from its first start: the planned point must fire there
// (its X_CRASHKIT_FIRED on its own notify socket) while the others stay up. A recovery-phase
// plan (`--plan-on restart`) starts I unarmed, SIGKILLs it after the workload and arms its
// restart, so the point fires inside I's recovery while the others serve. Either way I then
// restarts clean and the checks run. Discovery in a group counts replica I's crossings the same
// way: its first start and workload (run), its restart after a SIGKILL (recovery).
#include <fmt/format.h>

#include <variant>

#include "cell_run.hpp"

namespace crashkit::detail {

// Prepares and starts every replica, `armed` (-1: none) with `arm`, then awaits each.
std::optional<Verdict> CellRun::start_armed_group(int armed, Arm arm) {
  if (auto v = prepare_replicas()) return v;
  const auto all = all_replicas();
  if (auto v = launch_replicas(0, 0, all, armed, arm)) return v;
  std::vector<Duration> took;
  if (auto v = await_replicas(all, "before any fault: ", took)) return v;
  if (armed >= 0 && arm == Arm::plan)
    say(fmt::format("replica {}: armed: {}", armed, spec_.fault.plan));
  return std::nullopt;
}

// Another replica died while replica `armed` was the one meant to go down.
std::optional<Verdict> CellRun::others_alive(int armed) {
  for (int i = 0; i < spec_.replicas; ++i)
    if (i != armed && !replicas_[i]->daemon->alive())
      return Verdict{Outcome::unexpected_exit,
                     fmt::format("cycle 0: replica {} died while the plan was armed in replica {}: "
                                 "{}",
                                 i, armed, how_it_ended(*replicas_[i]->daemon))};
  return std::nullopt;
}

// A run-phase plan: it must have fired in replica `armed` by the end of the workload.
std::optional<Verdict> CellRun::group_plan_run(int armed, const std::vector<CrashRule>& rules,
                                               CellResult& result, CycleResult& cr) {
  ReplicaRun& target = *replicas_[armed];
  target.rx.drain();
  result.fired = target.rx.state().fired;
  const bool fired = fired_planned(target.rx.state(), rules);
  if (auto v = others_alive(armed)) return v;
  const bool alive = target.daemon->alive();
  cr.fault_status = target.daemon->kill().status;  // an action may leave it running
  target.daemon.reset();
  if (!fired)
    return alive ? Verdict{Outcome::fault_not_reached,
                           fmt::format("the plan {} never fired in replica {}", spec_.fault.plan,
                                       armed)}
                 : Verdict{Outcome::unexpected_exit,
                           fmt::format("cycle 0: replica {} died without the planned fire: {}",
                                       armed, status_text(cr.fault_status))};
  say(fmt::format("cycle 0: {} -> replica {} {}", spec_.fault.to_string(), armed,
                  status_text(cr.fault_status)));
  return std::nullopt;
}

// A recovery-phase plan: SIGKILL replica `armed`, check offline, restart it armed; the plan
// must fire before or after its READY. Leaves it down for the clean restart (start 2).
std::optional<Verdict> CellRun::group_plan_recovery(int armed, const std::vector<CrashRule>& rules,
                                                    CellResult& result, CycleResult& cr) {
  if (auto v = all_alive(0)) return v;  // nothing is armed yet: any death is unplanned
  ReplicaRun& target = *replicas_[armed];
  cr.fault_status = target.daemon->kill().status;
  target.daemon.reset();
  say(fmt::format("cycle 0: sigkill -> replica {} {}; its restart is armed: {}", armed,
                  status_text(cr.fault_status), spec_.fault.plan));
  if (auto v = run_checks(spec_.check_offline, 0, "offline")) return v;
  if (auto v = launch_replicas(1, 1, {armed}, armed, Arm::plan)) return v;
  std::optional<std::string> not_ready;
  {
    AsReplica as(replica_, armed);
    not_ready = await_ready(*target.daemon, nullptr);
  }
  target.rx.drain();
  result.fired = target.rx.state().fired;
  if (!fired_planned(target.rx.state(), rules)) {
    if (not_ready)
      return did_not_get_ready(fmt::format(
          "cycle 0: replica {}: restart before the planned recovery crash: {}", armed, *not_ready));
    return Verdict{
        Outcome::fault_not_reached,
        fmt::format("the plan {} never fired in replica {}'s recovery", spec_.fault.plan, armed)};
  }
  target.daemon->kill();
  target.daemon.reset();
  say(fmt::format("cycle 0: crash inside replica {}'s recovery fired", armed));
  if (auto v = others_alive(armed)) return v;
  return run_checks(spec_.check_offline, 0, "offline");
}

CellResult CellRun::run_group_plan() {
  CellResult result;
  result.run_dir = run_.root;
  const int armed = spec_.fault.at.index;
  const bool on_restart = spec_.fault.on_restart;
  const auto rules = std::get<std::vector<CrashRule>>(parse_crash_plan(spec_.fault.plan));
  if (auto v = make_replicas()) return finish(result, v->outcome, v->reason);
  if (auto v = start_armed_group(on_restart ? -1 : armed, Arm::plan))
    return finish(result, v->outcome, v->reason);
  if (spec_.workload) {
    if (auto v = net_on(0)) return finish(result, v->outcome, v->reason);
    auto w = run_command(*spec_.workload, 0, "workload.0.log");
    net_off();
    if (!w) return finish(result, Outcome::harness_error, w.error().message);
    if (on_restart && !w->status.success())  // nothing was armed: the set-up is broken
      return finish(result, Outcome::harness_error, "cycle 0: workload " + w->describe());
  }
  CycleResult cr;
  cr.hit = {armed};
  if (auto v = on_restart ? group_plan_recovery(armed, rules, result, cr)
                          : group_plan_run(armed, rules, result, cr))
    return end_on(result, cr, *v);
  if (!on_restart)
    if (auto v = run_checks(spec_.check_offline, 0, "offline")) return end_on(result, cr, *v);
  if (auto v = start_replicas(1, on_restart ? 2 : 1, {armed}, &cr)) return end_on(result, cr, *v);
  if (!cr.recoveries.empty()) cr.recovery = cr.recoveries.front();
  if (auto v = run_checks(spec_.check_online, 0, "online")) return end_on(result, cr, *v);
  if (auto v = all_alive(0)) return end_on(result, cr, *v);
  result.cycles.push_back(cr);
  for (auto& r : replicas_) stop_clean(*r->daemon, 1);
  return finish(result, Outcome::pass,
                fmt::format("{} fired in replica {} of {}{}, recovered and every check held",
                            spec_.fault.plan, armed, spec_.replicas,
                            on_restart ? " during its recovery" : ""));
}

// Discovery in replica spec_.fault.at.index: every replica up, that one counting its crossings;
// the workload; SIGKILL it; restart it counting again (recovery); stop all cleanly.
Result<Discovery> CellRun::run_group_discovery() {
  Discovery d;
  d.run_dir = run_.root;
  const int r = spec_.fault.at.index;
  auto fail = [](const Verdict& v) { return harness_error("discovery: " + v.reason); };
  if (auto v = make_replicas()) return fail(*v);
  if (auto v = start_armed_group(r, Arm::counters)) return fail(*v);
  if (spec_.workload) {
    auto w = run_command(*spec_.workload, 0, "workload.0.log");
    if (!w) return w.error();
    if (!w->status.success()) return harness_error("discovery: workload " + w->describe());
  }
  if (auto v = all_alive(0)) return fail(*v);
  replicas_[r]->daemon->kill();
  replicas_[r]->daemon.reset();
  d.run = read_crash_counters(counters_path(0, 0));
  if (auto v = launch_replicas(1, 1, {r}, r, Arm::counters)) return fail(*v);
  std::vector<Duration> took;
  if (auto v = await_replicas({r}, "discovery restart: ", took, true)) return fail(*v);
  for (auto& x : replicas_) stop_clean(*x->daemon, 1);
  d.recovery = read_crash_counters(counters_path(1, 1));
  return d;
}

}  // namespace crashkit::detail
