// The crash-plan cell: arm CRASHKIT_PLAN on the first start (points crossed by the workload)
// or on the restart after a SIGKILL (points crossed only in recovery), tell the planned crash
// (X_CRASHKIT_FIRED) from an unexpected one, then restart clean and check.
#include <fmt/ranges.h>
#include <signal.h>

#include <algorithm>
#include <variant>

#include "cell_run.hpp"
#include "crashkit/crash_plan.hpp"

namespace crashkit::detail {
namespace {

bool fired_planned(const NotifyState& s, const std::vector<CrashRule>& rules) {
  for (const auto& f : s.fired) {
    auto at = f.rfind('@');
    for (const auto& r : rules)
      if (f.compare(0, at, r.point) == 0 && at == r.point.size()) return true;
  }
  return false;
}

std::string crossings_note(const CrossingCounts& counts, const std::vector<CrashRule>& rules) {
  std::string out;
  for (const auto& r : rules) {
    auto it = counts.find(r.point);
    out += fmt::format("{}{} crossed {} time(s)", out.empty() ? "" : ", ", r.point,
                       it == counts.end() ? 0 : it->second);
  }
  return out;
}

}  // namespace

CellResult CellRun::run_crash_plan() {
  CellResult result;
  result.run_dir = run_.root;
  const auto rules = std::get<std::vector<CrashRule>>(parse_crash_plan(spec_.fault.plan));
  const bool on_restart = spec_.fault.on_restart;
  CycleResult cr;
  auto done = [&](Outcome o, std::string reason) {
    cr.outcome = o;
    cr.reason = reason;
    result.cycles.push_back(cr);
    return finish(result, o, std::move(reason));
  };
  auto note_fired = [&] {
    rx_.drain();  // the daemon may have reported the fire while we ran the workload
    const auto& f = rx_.state().fired;
    for (const auto& x : f)
      if (std::find(result.fired.begin(), result.fired.end(), x) == result.fired.end())
        result.fired.push_back(x);
  };
  if (auto step = prepare()) return done(step->outcome, step->reason);

  // Phase 1: the first start, armed unless the plan targets recovery.
  auto first = start(0, 0, !on_restart);
  if (!first) return done(Outcome::harness_error, first.error().message);
  std::optional<Daemon> daemon(std::move(*first));
  std::optional<ExitStatus> status;
  Duration elapsed{};
  auto not_ready = await_ready(*daemon, &elapsed, &status);
  note_fired();
  bool fired = !on_restart && fired_planned(rx_.state(), rules);
  if (not_ready && !fired) {
    if (status && status->exited_with(kPlanErrorExit))
      return done(Outcome::harness_error, "the daemon rejected CRASHKIT_PLAN: " + *not_ready);
    return done(daemon->alive() ? Outcome::not_ready : Outcome::unexpected_exit,
                "before any fault: " + *not_ready);
  }
  if (!not_ready) {
    result.first_ready = elapsed;
    if (spec_.workload) {
      auto w = run_shell(shell(*spec_.workload, 0, "workload.0.log"), &rx_);
      if (!w) return done(Outcome::harness_error, w.error().message);
      note_fired();
      fired = !on_restart && fired_planned(rx_.state(), rules);
      // A workload that fails because the planned fault hit the daemon is expected; one that
      // fails with nothing fired is a broken set-up, unless the daemon died under it.
      if (!w->status.success() && !fired) {
        if (!died_under_workload(*daemon))
          return done(Outcome::harness_error, fmt::format("cycle 0: workload {}", w->describe()));
      }
    }
    if (!on_restart && !fired) {
      if (!daemon->alive())
        return done(Outcome::unexpected_exit,
                    fmt::format("cycle 0: daemon died where no crash was planned: {}",
                                how_it_ended(*daemon)));
      auto counts = read_crash_counters(counters_path(0, 0));
      result.armed_crossings = counts;
      daemon->stop(SIGTERM, spec_.stop_timeout);
      return done(Outcome::fault_not_reached,
                  fmt::format("planned crossing not reached: {}", crossings_note(counts, rules)));
    }
  }
  if (!on_restart) result.armed_crossings = read_crash_counters(counters_path(0, 0));
  // A plan whose action did not end the daemon (error, delay, throw caught) is followed by
  // SIGKILL; recovery-targeted plans need the SIGKILL to leave work for recovery.
  cr.fault_status = daemon->kill().status;
  daemon.reset();
  say(fmt::format("cycle 0: {} -> {}", spec_.fault.to_string(),
                  cr.fault_status ? cr.fault_status->describe() : "exited"));
  if (auto step = run_checks(spec_.check_offline, 0, "offline"))
    return done(step->outcome, step->reason);

  int next_start = 1;
  if (on_restart) {
    // Phase 2: restart armed, so the plan fires inside recovery.
    auto armed = start(1, next_start, true);
    if (!armed) return done(Outcome::harness_error, armed.error().message);
    daemon.emplace(std::move(*armed));
    auto why = await_ready(*daemon, &elapsed, &status);
    note_fired();
    result.armed_crossings = read_crash_counters(counters_path(1, next_start));
    bool rfired = fired_planned(rx_.state(), rules);
    if (!rfired) {
      if (why && status && status->exited_with(kPlanErrorExit))
        return done(Outcome::harness_error, "the daemon rejected CRASHKIT_PLAN: " + *why);
      if (why)
        return done(daemon->alive() ? Outcome::not_ready : Outcome::unexpected_exit,
                    "cycle 0: restart before the planned recovery crash: " + *why);
      daemon->stop(SIGTERM, spec_.stop_timeout);
      return done(Outcome::fault_not_reached,
                  fmt::format("planned recovery crossing not reached: {}",
                              crossings_note(result.armed_crossings, rules)));
    }
    daemon->kill();
    daemon.reset();
    say("cycle 0: crash inside recovery fired");
    if (auto step = run_checks(spec_.check_offline, 0, "offline"))
      return done(step->outcome, step->reason);
    ++next_start;
  }
  if (auto step = recover_and_check(0, next_start, cr, daemon))
    return done(step->outcome, step->reason);
  daemon->stop(SIGTERM, spec_.stop_timeout);
  result.cycles.push_back(cr);
  std::string fires = result.fired.size() <= 3
                          ? fmt::format("{}", fmt::join(result.fired, ", "))
                          : fmt::format("{} fires ({} ... {})", result.fired.size(),
                                        result.fired.front(), result.fired.back());
  return finish(result, Outcome::pass, fmt::format("{} fired, recovered, every check held", fires));
}

Result<Discovery> CellRun::run_discovery() {
  Discovery d;
  d.run_dir = run_.root;
  if (auto step = prepare()) return harness_error(step->reason);
  auto first = start(0, 0, false, true);
  if (!first) return first.error();
  std::optional<Daemon> daemon(std::move(*first));
  if (auto why = await_ready(*daemon, nullptr)) return harness_error("discovery: " + *why);
  if (spec_.workload) {
    auto w = run_shell(shell(*spec_.workload, 0, "workload.0.log"), &rx_);
    if (!w) return w.error();
    if (!w->status.success()) return harness_error("discovery: workload " + w->describe());
  }
  daemon->kill();
  d.run = read_crash_counters(counters_path(0, 0));
  auto again = start(1, 1, false, true);
  if (!again) return again.error();
  daemon.emplace(std::move(*again));
  if (auto why = await_ready(*daemon, nullptr)) return harness_error("discovery restart: " + *why);
  daemon->stop(SIGTERM, spec_.stop_timeout);
  d.recovery = read_crash_counters(counters_path(1, 1));
  return d;
}

}  // namespace crashkit::detail
