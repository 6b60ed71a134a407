#include "crashkit/harness/cell.hpp"

#include <fmt/format.h>
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <charconv>
#include <variant>

#include "cell_run.hpp"
#include "crashkit/crash_plan.hpp"
#include "crashkit/harness/compiled_points.hpp"
#include "crashkit/harness/output_capture.hpp"

namespace crashkit {

namespace detail {

std::optional<Verdict> CellRun::apply_signal_fault(Daemon& d, int cycle, CycleResult& cr) {
  std::optional<ShellProcess> workload;
  if (auto v = net_on(cycle)) return v;
  disk_on(cycle);
  if (spec_.workload) {
    auto w = ShellProcess::start(
        shell(*spec_.workload, cycle, fmt::format("workload.{}.log", cycle), &background_));
    if (!w) return Verdict{Outcome::harness_error, w.error().message};
    workload.emplace(std::move(*w));
    disk_workload_started(cycle, workload->pgid());
  }
  const auto fault_kind = spec_.fault.kind;
  if (fault_kind == Fault::Kind::sigkill_after || fault_kind == Fault::Kind::powerloss_after) {
    // Kill while the workload runs; notice a daemon that dies on its own meanwhile.
    int watch[1] = {d.main_pidfd()};
    rx_.wait([](const NotifyState&) { return false; }, Clock::now() + spec_.fault.after, watch);
    if (!d.alive())
      return Verdict{Outcome::unexpected_exit,
                     fmt::format("cycle {}: daemon died before the planned SIGKILL: {}", cycle,
                                 how_it_ended(d))};
    cr.fault_status = d.kill().status;
    // Its failure is expected: the daemon went away.
    if (workload) note_left_behind(workload->finish(&rx_), fmt::format("workload.{}.log", cycle));
    return std::nullopt;
  }
  if (workload) {
    ShellResult wr = workload->finish(&rx_);
    note_left_behind(wr, fmt::format("workload.{}.log", cycle));
    if (!wr.status.success() && (!spec_.net.empty() || spec_.disk_full) && d.alive()) {
      // Under network toxics a client may fail (its reply was reset), on a full disk a put
      // may be refused: its puts stay pending and the checks judge; not a broken set-up.
      note(fmt::format("cycle {}: workload under --{} {}", cycle,
                       spec_.disk_full ? "disk-full" : "net", wr.describe()));
    } else if (!wr.status.success()) {
      if (died_under_workload(d))
        return Verdict{
            Outcome::unexpected_exit,
            fmt::format("cycle {}: daemon died during the workload: {}", cycle, how_it_ended(d))};
      // Against a freshly started daemon a failing workload is a broken set-up; after a
      // restart it means the recovered daemon misbehaves.
      Outcome o = cycle == 0 ? Outcome::harness_error : Outcome::violation;
      return Verdict{o, fmt::format("cycle {}: workload {}", cycle, wr.describe())};
    }
  }
  if (!d.alive())
    return Verdict{
        Outcome::unexpected_exit,
        fmt::format("cycle {}: daemon died during the workload: {}", cycle, how_it_ended(d))};
  if (fault_kind == Fault::Kind::none) return std::nullopt;  // the daemon keeps running
  if (fault_kind == Fault::Kind::sigkill || fault_kind == Fault::Kind::powerloss) {
    cr.fault_status = d.kill().status;
    return std::nullopt;
  }
  auto stop = stop_clean(d, cycle);
  cr.fault_status = stop.status;
  const std::string sig = signal_name(spec_.clean_stop.signal);
  if (stop.escalated)
    return Verdict{
        Outcome::unexpected_exit,
        fmt::format("cycle {}: {} ignored for {} (escalated to SIGKILL); the daemon "
                    "must exit on {} within --stop-timeout (or give its stop signal with "
                    "--stop-signal)",
                    cycle, sig, format_duration(spec_.stop_timeout), sig)};
  if (stop.status && !spec_.clean_stop.clean(*stop.status))
    return Verdict{
        Outcome::unexpected_exit,
        fmt::format("cycle {}: on {} the daemon {} (a clean stop is {}; "
                    "--success-exit-status adds codes and signals)",
                    cycle, sig, stop.status->describe(), spec_.clean_stop.describe_clean())};
  return std::nullopt;
}

CellResult CellRun::run_signal_fault() {
  CellResult result;
  result.run_dir = run_.root;
  if (auto v = prepare()) return finish(result, v->outcome, v->reason);
  auto first = start(0, 0);
  if (!first) return finish(result, Outcome::harness_error, first.error().message);
  std::optional<Daemon> daemon(std::move(*first));
  Duration ready_elapsed{};
  if (auto why = await_ready(*daemon, &ready_elapsed)) {
    auto v = did_not_get_ready("before any fault: " + *why);
    return finish(result, v.outcome, v.reason);
  }
  result.first_ready = ready_elapsed;
  say(fmt::format("ready after {} (pid {})", format_duration(ready_elapsed), daemon->main_pid()));

  for (int cycle = 0; cycle < spec_.cycles; ++cycle) {
    CycleResult cr;
    cr.cycle = cycle;
    auto v = apply_signal_fault(*daemon, cycle, cr);
    net_off();  // the checks see a healed network
    if (v) return end_on(result, cr, *v);
    if (spec_.fault.kind == Fault::Kind::none) {  // no restart: check the daemon as it runs
      if (auto c = run_checks(spec_.check_online, cycle, "online")) return end_on(result, cr, *c);
      if (!daemon->alive())
        return end_on(
            result, cr,
            {Outcome::unexpected_exit, fmt::format("cycle {}: daemon died without a fault: {}",
                                                   cycle, how_it_ended(*daemon))});
      result.cycles.push_back(std::move(cr));
      continue;
    }
    daemon.reset();
    if (log_) say(fault_line(cycle, cr));  // formatted only when someone listens
    if (auto v = cut_power(cycle, cr)) return end_on(result, cr, *v);
    if (auto v = disk_release()) return end_on(result, cr, *v);
    if (auto v = run_checks(spec_.check_offline, cycle, "offline")) return end_on(result, cr, *v);
    if (auto v = recover_and_check(cycle, 1, cr, daemon)) return end_on(result, cr, *v);
    result.cycles.push_back(std::move(cr));
  }
  auto last = stop_clean(*daemon, spec_.cycles);
  if (last.escalated)
    say(fmt::format("final stop: {} ignored, escalated to SIGKILL",
                    signal_name(spec_.clean_stop.signal)));
  return finish(
      result, Outcome::pass,
      fmt::format("{} cycle(s) of {} {}and every check held", spec_.cycles, spec_.fault.to_string(),
                  spec_.fault.kind == Fault::Kind::none ? "" : "recovered "));
}

}  // namespace detail

namespace {

// The first ancestor of `dir` that `user` may not traverse (no x permission for it).
std::optional<std::filesystem::path> unsearchable_ancestor(const std::filesystem::path& dir,
                                                           const Credentials& user) {
  for (auto p = dir.parent_path(); !p.empty(); p = p.parent_path()) {
    struct stat st {};
    if (stat(p.c_str(), &st) != 0) return p;
    bool in_group = st.st_gid == user.gid || std::find(user.groups.begin(), user.groups.end(),
                                                       st.st_gid) != user.groups.end();
    bool ok = user.uid == 0 || (st.st_uid == user.uid && (st.st_mode & S_IXUSR)) ||
              (st.st_uid != user.uid && in_group && (st.st_mode & S_IXGRP)) ||
              (st.st_uid != user.uid && !in_group && (st.st_mode & S_IXOTH));
    if (!ok) return p;
    if (p == p.root_path()) break;
  }
  return std::nullopt;
}

// An ELF with crash points names them all: a plan naming another point is a typo, rejected
// before anything runs.
std::optional<Error> unknown_plan_point(const std::string& plan, const std::string& exe) {
  auto points = read_compiled_points(exe);
  if (!points || points->empty()) return std::nullopt;
  const auto rules = std::get<std::vector<CrashRule>>(parse_crash_plan(plan));
  for (const auto& r : rules) {
    if (std::any_of(points->begin(), points->end(),
                    [&](const PointName& p) { return p.name == r.point; }))
      continue;
    std::string known;
    for (const auto& p : *points) known += (known.empty() ? "" : ", ") + p.name;
    return usage_error(
        fmt::format("--plan: unknown crash point '{}' in {}; it has: {}", r.point, exe, known));
  }
  return std::nullopt;
}

// The checks of the spec that need nothing created.
std::optional<Error> check_spec(const CellSpec& spec) {
  if (spec.target.empty()) return usage_error("no target: give the daemon command after --");
  if (spec.cycles < 1) return usage_error("--cycles must be at least 1");
  for (auto [d, name] : {std::pair{spec.ready_timeout, "--ready-timeout"},
                         std::pair{spec.stop_timeout, "--stop-timeout"},
                         std::pair{spec.command_timeout, "--command-timeout"}})
    if (d <= Duration::zero() || d > kLongestTimeout)
      return usage_error(fmt::format("{} {}: a timeout must be longer than 0 and at most 576h",
                                     name, format_duration(d)));
  if (spec.memory && is_group(spec))
    return usage_error("--memory: for one daemon (not yet for groups or scenarios)");
  if (spec.disk_full && (is_group(spec) || (spec.fault.kind == Fault::Kind::crash_plan &&
                                            spec.disk_full->fills_later())))
    return usage_error(
        "--disk-full: for one daemon with a signal fault, or a crash plan filled from the start "
        "(not yet for groups, scenarios, or --fill-at with a plan)");
  if (spec.disk_full && spec.disk_full->fill_at_op > 0 &&
      (!spec.workload || spec.workload->find("{ledger}") == std::string::npos))
    return usage_error(
        "--fill-at op:K counts the acknowledged operations the workload writes to {ledger}; give "
        "a --workload that writes it (crashkit workload, or 'acked ...' lines), or --fill-at "
        "DURATION");
  for (const auto& l : spec.rlimits)
    if (auto ceiling = hard_limit_ceiling(l))
      return usage_error(
          fmt::format("--rlimit {}: above crashkit's own hard limit {}, and raising it needs "
                      "CAP_SYS_RESOURCE; give a hard limit of at most {} (NAME=SOFT:HARD)",
                      l.text, *ceiling, *ceiling));
  // Check the binary before creating anything, so a typo is a usage error (exit 2).
  if (spec.target[0].find('{') == std::string::npos) {
    auto exe = resolve_executable(spec.target[0]);
    if (!exe) return exe.error();
    if (spec.fault.kind == Fault::Kind::crash_plan) {
      if (auto e = unknown_plan_point(spec.fault.plan, *exe)) return e;
    }
    if (loses_power(spec)) {
      if (auto e = detail::refuse_static_target(*exe)) return e;
    }
  }
  if (spec.fault.kind == Fault::Kind::crash_plan && spec.cycles != 1)
    return usage_error("--cycles applies to signal faults; a crash plan runs one cycle");
  if (auto e = detail::net_error(spec)) return e;
  return group_error(spec);
}

// The run dir, owned by `user` when one is given, which must be able to reach it.
Result<RunDir> create_run_dir(const std::filesystem::path& dir,
                              const std::optional<Credentials>& user) {
  std::optional<std::pair<uid_t, gid_t>> owner;
  if (user) owner = std::make_pair(user->uid, user->gid);
  auto run = RunDir::create(dir, owner);
  if (!run) return run.error();
  if (user) {
    if (auto blocked = unsearchable_ancestor(run->root, *user)) {
      run->remove_unless_kept(false);
      return usage_error(fmt::format(
          "run dir {}: user {} cannot reach it ({} is not searchable by that user); pass "
          "--run-dir under a directory it can enter, e.g. /tmp",
          run->root.string(), user->name, blocked->string()));
    }
  }
  return run;
}

// Everything before the first spawn: the checks of the spec, the user, the run dir, the
// notify receiver. Usage problems come back as an Error.
Result<detail::CellRun> preflight(const CellSpec& spec, const CellLog& log) {
  if (auto e = check_spec(spec)) return *e;
  std::optional<Credentials> user;
  if (spec.user) {
    auto u = lookup_user(*spec.user);
    if (!u) return u.error();
    user = std::move(*u);
  }
  auto run = create_run_dir(spec.run_dir, user);
  if (!run) return run.error();
  auto rx = NotifyReceiver::bind(run->notify_socket.string(), spec.notify_access,
                                 user ? std::optional<uid_t>(user->uid) : std::nullopt);
  if (!rx) {
    run->remove_unless_kept(false);
    return rx.error();
  }
  return detail::CellRun(spec, log, std::move(*run), std::move(user), std::move(*rx));
}

}  // namespace

Result<CellResult> run_cell(const CellSpec& spec, const CellLog& log) {
  auto cell = preflight(spec, log);
  if (!cell) return cell.error();
  const bool plan = spec.fault.kind == Fault::Kind::crash_plan;
  CellResult r = plan && is_group(spec) ? cell->run_group_plan()
                 : plan                 ? cell->run_crash_plan()
                 : !spec.steps.empty()  ? cell->run_scenario()
                 : is_group(spec)       ? cell->run_group()
                                        : cell->run_signal_fault();
  cell->end_exhaustion(r);
  const RunDir& dir = cell->run_dir();
  // Its daemons and commands have all finished: output a full disk kept out of its artifacts
  // is said here, never lost silently.
  for (const auto& loss : take_capture_losses(dir.root)) r.notes.push_back(loss.describe());
  r.kept = spec.keep || needs_attention(r.outcome) || !dir.created_by_us;
  dir.remove_unless_kept(r.kept);
  return r;
}

Result<Discovery> discover(const CellSpec& spec, const CellLog& log) {
  auto cell = preflight(spec, log);
  if (!cell) return cell.error();
  auto d = cell->run_discovery();
  CellResult ignored;
  cell->end_exhaustion(ignored);
  const RunDir& dir = cell->run_dir();
  // Kept as a cell's run dir is: asked for, failed (the evidence), or not ours to remove; a
  // failure says where it is, as a failing cell does.
  const bool kept = spec.keep || !d || !dir.created_by_us;
  dir.remove_unless_kept(kept);
  std::vector<std::string> notes;
  for (const auto& loss : take_capture_losses(dir.root)) notes.push_back(loss.describe());
  if (!d) {
    Error e = d.error();
    e.message += fmt::format("; run dir kept: {}", dir.root.string());
    for (const auto& n : notes) e.message += "; " + n;
    return e;
  }
  d->kept = kept;
  d->notes = std::move(notes);
  return d;
}

}  // namespace crashkit
