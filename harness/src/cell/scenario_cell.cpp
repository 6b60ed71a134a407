// The scenario cell (docs/replicas.md): a group of replicas driven by an ordered list of steps
// instead of fault cycles. Each step is one line in artifacts/steps.log and in the cell's log;
// the first check that fails, a replica that dies unhit, or a restart that never gets ready ends
// the cell with that step's number in the reason. A failed workload is not a finding by itself
// (its puts stay pending; the checks judge), so it is a note.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <fstream>
#include <numeric>

#include "cell_run.hpp"

namespace crashkit::detail {
namespace {

const char* kind_name(ScenarioStep::Kind k) {
  switch (k) {
    case ScenarioStep::Kind::start:
      return "start";
    case ScenarioStep::Kind::wait_ready:
      return "wait_ready";
    case ScenarioStep::Kind::workload:
      return "workload";
    case ScenarioStep::Kind::fault:
      return "fault";
    case ScenarioStep::Kind::restart:
      return "restart";
    case ScenarioStep::Kind::check:
      return "check";
    case ScenarioStep::Kind::sleep:
      return "sleep";
    case ScenarioStep::Kind::net:
      return "net";
  }
  return "step";
}

}  // namespace

void CellRun::step_log(std::string line) {
  say(line);
  std::ofstream(run_.artifacts / "steps.log", std::ios::app) << line << '\n';
}

std::vector<int> CellRun::down_replicas() const {
  std::vector<int> out;
  for (std::size_t i = 0; i < replicas_.size(); ++i)
    if (!replicas_[i]->daemon) out.push_back(static_cast<int>(i));
  return out;
}

// start: every replica that is down, without waiting (a wait_ready step follows).
std::optional<Verdict> CellRun::step_start(int at) {
  const std::vector<int> down = down_replicas();
  if (auto v = launch_replicas(at, 0, down)) return v;
  awaiting_.insert(awaiting_.end(), down.begin(), down.end());
  step_log(fmt::format("step {}: start: {} replica(s) started", at, awaiting_.size()));
  return std::nullopt;
}

std::optional<Verdict> CellRun::step_wait_ready(int at, CellResult& result) {
  std::vector<int> which;
  which.swap(awaiting_);
  std::vector<Duration> took;
  if (auto v = await_replicas(which, "", took)) return v;
  for (Duration elapsed : took)
    if (!result.first_ready || elapsed > *result.first_ready) result.first_ready = elapsed;
  step_log(fmt::format("step {}: wait_ready: {} replica(s) ready", at, which.size()));
  return std::nullopt;
}

// restart: N or all: the named replicas that are down, started and awaited together.
std::optional<Verdict> CellRun::step_restart(int at, const ScenarioStep& step, CellResult& result) {
  std::vector<int> which = down_replicas();
  if (step.replicas != "all") {
    const int i = std::stoi(step.replicas);  // validated against the group when loaded
    if (replicas_[i]->daemon) {
      step_log(fmt::format("step {}: {}: replica {} is running; left alone", at, step.text, i));
      return std::nullopt;
    }
    which = {i};
  }
  CycleResult cr;
  cr.cycle = at;
  cr.hit = which;  // in a scenario's report: the replicas this step restarted
  if (auto v = start_replicas(at, 0, which, &cr)) return v;
  if (!cr.recoveries.empty())
    cr.recovery = *std::max_element(cr.recoveries.begin(), cr.recoveries.end());
  result.cycles.push_back(cr);
  step_log(fmt::format("step {}: {}: {} replica(s) recovered", at, step.text, which.size()));
  return std::nullopt;
}

// fault: the pick's replicas, each up, killed or stopped; they stay down until a restart.
std::optional<Verdict> CellRun::step_fault(int at, const ScenarioStep& step) {
  if (auto v = all_alive(at)) return v;
  auto picked = pick_replicas(at, step.fault.at);
  if (!picked) return Verdict{Outcome::harness_error, picked.error().message};
  for (int i : *picked)
    if (!replicas_[i]->daemon)
      return Verdict{Outcome::harness_error,
                     fmt::format("replica {} is already down; restart it first", i)};
  CycleResult cr;
  if (auto v = hit_replicas(at, cr, step.fault)) return v;
  for (int i : cr.hit) replicas_[i]->daemon.reset();
  step_log(fmt::format("step {}: fault {}: replica(s) {} down", at, step.fault.to_string(),
                       fmt::join(cr.hit, ",")));
  return std::nullopt;
}

std::optional<Verdict> CellRun::run_step(int at, const ScenarioStep& step, CellResult& result) {
  using Kind = ScenarioStep::Kind;
  switch (step.kind) {
    case Kind::start:
      return step_start(at);
    case Kind::wait_ready:
      return step_wait_ready(at, result);
    case Kind::restart:
      return step_restart(at, step, result);
    case Kind::fault:
      return step_fault(at, step);
    case Kind::workload: {
      auto w = run_command(*spec_.workload, at, fmt::format("workload.step{}.log", at));
      if (!w) return Verdict{Outcome::harness_error, w.error().message};
      if (!w->status.success()) note(fmt::format("step {}: workload {}", at, w->describe()));
      step_log(
          fmt::format("step {}: workload {}", at, w->status.success() ? "done" : w->describe()));
      return all_alive(at);
    }
    case Kind::check:
      if (auto v = run_checks(spec_.check_online, at, "online")) return v;
      step_log(fmt::format("step {}: check: every check held", at));
      return all_alive(at);
    case Kind::sleep:
      rx_.wait([](const NotifyState&) { return false; }, Clock::now() + step.pause);
      step_log(fmt::format("step {}: slept {}", at, format_duration(step.pause)));
      return std::nullopt;
    case Kind::net:
      return step_net(at, step);
  }
  return std::nullopt;
}

CellResult CellRun::run_scenario() {
  CellResult result;
  result.run_dir = run_.root;
  if (auto v = make_replicas()) return finish(result, v->outcome, v->reason);
  if (auto v = prepare_replicas()) return finish(result, v->outcome, v->reason);
  // Without a first `start` step, every replica starts and gets ready first, as "step 0".
  const std::vector<ScenarioStep>& steps = spec_.steps;
  if (steps.empty() || steps.front().kind != ScenarioStep::Kind::start) {
    auto v = step_start(0);
    if (!v) v = step_wait_ready(0, result);
    if (v) return finish(result, v->outcome, "step 0 (start, wait_ready): " + v->reason);
  }
  for (std::size_t n = 0; n < steps.size(); ++n) {
    const int at = static_cast<int>(n + 1);
    if (auto v = run_step(at, steps[n], result)) {
      v->reason = fmt::format("step {} ({}): {}", at, steps[n].text, v->reason);
      step_log(fmt::format("step {}: {}: {}", at, kind_name(steps[n].kind), to_string(v->outcome)));
      return finish(result, v->outcome, v->reason);
    }
  }
  for (auto& r : replicas_)
    if (r->daemon) stop_clean(*r->daemon, static_cast<int>(steps.size()));
  return finish(result, Outcome::pass,
                fmt::format("scenario of {} step(s) on {} replica(s): every check held",
                            steps.size(), spec_.replicas));
}

}  // namespace crashkit::detail
