// A cell's starts of the target, its checks, and the restart after a fault: the steps every
// flow (cell.cpp, crash_cell.cpp, group and scenario cells) shares.
#include <fmt/format.h>

#include <cerrno>
#include <cstring>

#include "cell/cell_run.hpp"
#include "crashkit/harness/duration.hpp"

namespace crashkit::detail {

Result<Daemon> CellRun::start(int cycle, int start_no, Arm arm) {
  last_start_cycle_ = cycle;
  if (spec_.before_start) {
    auto r = run_command(*spec_.before_start, cycle,
                         fmt::format("before-start.{}.{}.log", cycle, start_no));
    if (!r) return r.error();
    if (!r->status.success())
      return harness_error(fmt::format("--before-start {} (before start {} of cycle {})",
                                       r->describe(), start_no, cycle));
  }
  std::vector<std::string> more;
  if (arm == Arm::plan) more.push_back(fmt::format("{}={}", kPlanVariable, spec_.fault.plan));
  if (arm != Arm::none) {
    std::string path = counters_path(cycle, start_no);
    if (!create_crash_counters(path))
      return harness_error(fmt::format("counters file {}: {}", path, std::strerror(errno)));
    more.push_back(fmt::format("{}={}", kCountersVariable, path));
  }
  if (loses_power(spec_)) {
    auto power = power_env(cycle);
    if (!power) return power.error();
    more.insert(more.end(), power->begin(), power->end());
  }
  ReplicaRun* member = replica_ >= 0 ? replicas_[replica_].get() : nullptr;
  const RunDir& dir = member != nullptr ? member->dir : run_;
  Daemon::Options o;
  start_command(cycle, more, o);
  o.user = user_;
  o.cwd = dir.root;
  o.artifact_prefix = dir.artifacts / fmt::format("target.{}.{}", cycle, start_no);
  o.capture_limit = spec_.capture_limit;
  o.deny_io_uring = loses_power(spec_);  // io_uring would bypass the journal shim
  o.limits = spec_.rlimits;
  o.memory_cgroup_procs = memory_ && member == nullptr ? memory_->procs_fd() : -1;
  o.containment = member != nullptr ? &member->containment : &daemons_;
  // One pair of capture pipes for every start of a lone daemon, where a cgroup guarantees
  // each start's processes are all gone before the next (Daemon::KeptPipes).
  if (member == nullptr && daemons_.mode() == Containment::Mode::cgroup)
    o.kept_pipes = &kept_pipes_;
  return Daemon::start(std::move(o), member != nullptr ? member->rx : rx_);
}

// The kill-restart loop restarts a lone target with nothing armed, and its argv and environment
// then differ from the last start's only in CRASHKIT_CYCLE, unless the target or an `env` entry
// names {cycle}. Building them again was about 5 µs of the harness's 35 µs per cycle
// (docs/harness.md, "The kill-restart loop against the spawn floor"); the first plain start's
// are kept and copied instead. A group's or a proxied cell's placeholders are not taken to be
// fixed, so those are built each time.
void CellRun::start_command(int cycle, const std::vector<std::string>& more, Daemon::Options& o) {
  const bool plain = more.empty() && replica_ < 0 && replicas_.empty() && !net_;
  if (plain && plain_start_) {
    o.argv = plain_start_->argv;
    o.env = plain_start_->env;
    o.env[plain_start_->cycle_at] = cycle_variable(cycle);
    return;
  }
  o.argv = placeholders(cycle).apply(spec_.target);
  o.env = env(cycle, more);
  auto names_cycle = [](const std::vector<std::string>& v) {
    return std::any_of(v.begin(), v.end(),
                       [](const std::string& s) { return s.find("{cycle}") != s.npos; });
  };
  if (!plain || names_cycle(spec_.target) || names_cycle(spec_.extra_env)) return;
  const std::string key = cycle_variable(cycle);
  auto at = std::find(o.env.rbegin(), o.env.rend(), key);
  if (at == o.env.rend()) return;
  plain_start_ = StartCommand{o.argv, o.env, static_cast<std::size_t>(o.env.rend() - at - 1)};
}

std::optional<Verdict> CellRun::run_checks(const std::vector<std::string>& checks, int cycle,
                                           std::string_view kind) {
  for (std::size_t i = 0; i < checks.size(); ++i) {
    auto r = run_command(checks[i], cycle, fmt::format("check-{}.{}.{}.log", kind, cycle, i), &rx_);
    if (!r) return Verdict{Outcome::harness_error, r.error().message};
    if (r->status.success()) continue;
    // The checker contract (docs/checks.md): 0 holds, 1 violated, anything else (127: not
    // found, 126: not executable, 2: its own usage error, a signal, a timeout) means the
    // check could not judge, and that is not data loss.
    const std::string what = placeholders(cycle).apply(checks[i]);
    if (r->status.exited_with(1) && !r->timed_out)
      return Verdict{Outcome::violation, fmt::format("cycle {}: {} check {} {}", cycle, kind,
                                                     shell_quote(what), r->describe())};
    return Verdict{Outcome::harness_error,
                   fmt::format("cycle {}: {} check {} could not judge ({}); a check exits 0 "
                               "when the state holds, 1 when it does not, anything else when "
                               "it cannot tell",
                               cycle, kind, shell_quote(what), r->describe())};
  }
  return std::nullopt;
}

std::optional<Verdict> CellRun::recover_and_check(int cycle, int start_no, CycleResult& cr,
                                                  std::optional<Daemon>& daemon) {
  auto again = start(cycle + 1, start_no);
  if (!again) return Verdict{Outcome::harness_error, again.error().message};
  daemon.emplace(std::move(*again));
  Duration recovery{};
  if (auto why = await_ready(*daemon, &recovery))
    return Verdict{Outcome::not_ready, fmt::format("cycle {}: after restart: {}", cycle, *why)};
  cr.recovery = recovery;
  if (log_)  // per cycle: a quiet run does not format it
    say(fmt::format("cycle {}: recovered, READY after {}", cycle, format_duration(recovery)));
  return run_checks(spec_.check_online, cycle, "online");
}

}  // namespace crashkit::detail
