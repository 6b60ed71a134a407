// A crash plan in one replica of a group (`--plan P --replicas N --plan-replica I`, matrix
// `crash_points: {replica: I, ...}`): every replica starts, replica I with CRASHKIT_PLAN armed;
// the workload runs against the group; the planned point must fire in replica I (its
// X_CRASHKIT_FIRED on its own notify socket) while the others stay up; then I restarts clean and
// the checks run. Run-phase plans only: a plan armed on a restart is not built for groups.
#include <fmt/format.h>

#include <numeric>
#include <variant>

#include "cell_run.hpp"

namespace crashkit::detail {

// Prepares and starts every replica, `armed` with CRASHKIT_PLAN, then awaits each.
std::optional<Verdict> CellRun::start_armed_group(int armed) {
  if (auto v = prepare_replicas()) return v;
  std::vector<int> everyone(replicas_.size());
  std::iota(everyone.begin(), everyone.end(), 0);
  if (auto v = launch_replicas(0, 0, everyone, armed)) return v;
  std::vector<Duration> took;
  if (auto v = await_replicas(everyone, "before any fault: ", took)) return v;
  say(fmt::format("replica {}: armed: {}", armed, spec_.fault.plan));
  return std::nullopt;
}

CellResult CellRun::run_group_plan() {
  CellResult result;
  result.run_dir = run_.root;
  const int armed = spec_.fault.at.index;
  const auto rules = std::get<std::vector<CrashRule>>(parse_crash_plan(spec_.fault.plan));
  if (auto v = make_replicas()) return finish(result, v->outcome, v->reason);
  if (auto v = start_armed_group(armed)) return finish(result, v->outcome, v->reason);
  if (spec_.workload) {
    auto w = run_command(*spec_.workload, 0, "workload.0.log");
    if (!w) return finish(result, Outcome::harness_error, w.error().message);
  }
  ReplicaRun& target = *replicas_[armed];
  target.rx.drain();
  result.fired = target.rx.state().fired;
  const bool fired = fired_planned(target.rx.state(), rules);
  CycleResult cr;
  cr.hit = {armed};
  for (int i = 0; i < spec_.replicas; ++i)
    if (i != armed && !replicas_[i]->daemon->alive())
      return end_on(result, cr,
                    {Outcome::unexpected_exit,
                     fmt::format("cycle 0: replica {} died while the plan was armed in replica {}: "
                                 "{}",
                                 i, armed, how_it_ended(*replicas_[i]->daemon))});
  const bool alive = target.daemon->alive();
  cr.fault_status = target.daemon->kill().status;  // an action may leave it running
  target.daemon.reset();
  if (!fired)
    return end_on(result, cr,
                  alive ? Verdict{Outcome::fault_not_reached,
                                  fmt::format("the plan {} never fired in replica {}",
                                              spec_.fault.plan, armed)}
                        : Verdict{Outcome::unexpected_exit,
                                  fmt::format("cycle 0: replica {} died without the planned fire: "
                                              "{}",
                                              armed, status_text(cr.fault_status))});
  say(fmt::format("cycle 0: {} -> replica {} {}", spec_.fault.to_string(), armed,
                  status_text(cr.fault_status)));
  if (auto v = run_checks(spec_.check_offline, 0, "offline")) return end_on(result, cr, *v);
  if (auto v = start_replicas(1, 1, {armed}, &cr)) return end_on(result, cr, *v);
  if (!cr.recoveries.empty()) cr.recovery = cr.recoveries.front();
  if (auto v = run_checks(spec_.check_online, 0, "online")) return end_on(result, cr, *v);
  if (auto v = all_alive(0)) return end_on(result, cr, *v);
  result.cycles.push_back(cr);
  for (auto& r : replicas_) stop_clean(*r->daemon, 1);
  return finish(result, Outcome::pass,
                fmt::format("{} fired in replica {} of {}, recovered and every check held",
                            spec_.fault.plan, armed, spec_.replicas));
}

}  // namespace crashkit::detail
