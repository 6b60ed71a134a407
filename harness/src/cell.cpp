#include "crashkit/harness/cell.hpp"

#include <fmt/format.h>
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>

#include "crashkit/harness/child.hpp"
#include "crashkit/harness/daemon.hpp"
#include "crashkit/harness/placeholders.hpp"
#include "crashkit/harness/run_dir.hpp"
#include "crashkit/harness/shell_command.hpp"

namespace crashkit {

Result<Fault> Fault::parse(std::string_view text) {
  if (text == "sigterm") return Fault{Kind::sigterm, {}};
  if (text == "sigkill") return Fault{Kind::sigkill, {}};
  constexpr std::string_view prefix = "sigkill-after=";
  if (text.starts_with(prefix)) {
    auto d = parse_duration("--fault sigkill-after", text.substr(prefix.size()));
    if (!d) return d.error();
    return Fault{Kind::sigkill_after, *d};
  }
  return usage_error(fmt::format(
      "--fault '{}': unknown fault; use sigterm, sigkill or sigkill-after=DURATION", text));
}

std::string Fault::to_string() const {
  switch (kind) {
    case Kind::sigterm:
      return "sigterm";
    case Kind::sigkill:
      return "sigkill";
    case Kind::sigkill_after:
      return "sigkill-after=" + format_duration(after);
  }
  return "sigkill";
}

namespace {

// One cell's moving parts, so each step reads as a method rather than a 300-line function.
class CellRun {
 public:
  CellRun(const CellSpec& spec, const CellLog& log, RunDir run, std::optional<Credentials> user,
          NotifyReceiver rx)
      : spec_(spec), log_(log), run_(std::move(run)), user_(std::move(user)), rx_(std::move(rx)) {}

  CellResult run();

 private:
  struct Step {  // a finished cycle step: nullopt = carry on
    Outcome outcome;
    std::string reason;
  };

  void say(std::string_view line) const {
    if (log_) log_(line);
  }
  Placeholders placeholders(int cycle) const {
    return {run_.root.string(), run_.data.string(), run_.scratch.string(), run_.ledger.string(),
            cycle};
  }
  std::vector<std::string> env(int cycle) const {
    std::vector<std::string> extra = spec_.extra_env;
    extra.push_back("CRASHKIT_RUN_DIR=" + run_.root.string());
    extra.push_back("CRASHKIT_DATA_DIR=" + run_.data.string());
    extra.push_back("CRASHKIT_LEDGER=" + run_.ledger.string());
    extra.push_back("CRASHKIT_CYCLE=" + std::to_string(cycle));
    return child_environment(extra);
  }
  ShellRun shell(const std::string& command, int cycle, const std::string& log_name) const {
    return {placeholders(cycle).apply(command),
            env(cycle),
            user_,
            run_.root,
            run_.artifacts / log_name,
            spec_.command_timeout,
            spec_.capture_limit};
  }

  Result<Daemon> start(int cycle, int start_no) {
    Daemon::Options o;
    o.argv = placeholders(cycle).apply(spec_.target);
    o.env = env(cycle);
    o.user = user_;
    o.cwd = run_.root;
    o.artifact_prefix = run_.artifacts / fmt::format("target.{}.{}", cycle, start_no);
    o.capture_limit = spec_.capture_limit;
    return Daemon::start(o, rx_);
  }

  // READY or the reason it did not come.
  std::optional<std::string> await_ready(Daemon& d, Duration* elapsed) {
    auto w = d.wait_ready(spec_.ready_timeout);
    if (elapsed != nullptr) *elapsed = w.elapsed;
    if (w.what == Daemon::Ready::ready) return std::nullopt;
    std::string tail = last_line(d.stderr_tail());
    std::string why =
        w.what == Daemon::Ready::timeout
            ? fmt::format(
                  "no READY=1 within {} (raise --ready-timeout, or check the daemon "
                  "speaks sd_notify)",
                  format_duration(spec_.ready_timeout))
            : fmt::format("exited before READY ({})",
                          w.status ? w.status->describe() : std::string("status unknown"));
    if (!tail.empty()) why += fmt::format("; stderr: {}", tail);
    return why;
  }

  std::optional<Step> run_checks(const std::vector<std::string>& checks, int cycle,
                                 std::string_view kind) {
    for (std::size_t i = 0; i < checks.size(); ++i) {
      auto r =
          run_shell(shell(checks[i], cycle, fmt::format("check-{}.{}.{}.log", kind, cycle, i)));
      if (!r) return Step{Outcome::harness_error, r.error().message};
      if (!r->status.success())
        return Step{Outcome::violation, fmt::format("cycle {}: {} check '{}' {}", cycle, kind,
                                                    checks[i], r->describe())};
    }
    return std::nullopt;
  }

  std::optional<Step> apply_fault(Daemon& d, int cycle, CycleResult& cr);

  const CellSpec& spec_;
  const CellLog& log_;
  RunDir run_;
  std::optional<Credentials> user_;
  NotifyReceiver rx_;
};

std::optional<CellRun::Step> CellRun::apply_fault(Daemon& d, int cycle, CycleResult& cr) {
  std::optional<ShellProcess> workload;
  if (spec_.workload) {
    auto w =
        ShellProcess::start(shell(*spec_.workload, cycle, fmt::format("workload.{}.log", cycle)));
    if (!w) return Step{Outcome::harness_error, w.error().message};
    workload.emplace(std::move(*w));
  }
  const auto fault_kind = spec_.fault.kind;
  if (fault_kind == Fault::Kind::sigkill_after) {
    // Kill while the workload runs; notice a daemon that dies on its own meanwhile.
    int watch[1] = {d.main_pidfd()};
    rx_.wait([](const NotifyState&) { return false; }, Clock::now() + spec_.fault.after, watch);
    if (!d.alive())
      return Step{
          Outcome::unexpected_exit,
          fmt::format("cycle {}: daemon died before the planned SIGKILL: {}", cycle,
                      d.stop(SIGKILL, {}).status.value_or(ExitStatus::exited(0)).describe())};
    cr.fault_status = d.kill().status;
    if (workload) workload->finish();  // its failure is expected: the daemon went away
    return std::nullopt;
  }
  if (workload) {
    ShellResult wr = workload->finish();
    if (!wr.status.success()) {
      // Against a freshly started daemon a failing workload is a broken set-up; after a
      // restart it means the recovered daemon misbehaves.
      Outcome o = cycle == 0 ? Outcome::harness_error : Outcome::violation;
      return Step{o, fmt::format("cycle {}: workload {}", cycle, wr.describe())};
    }
  }
  if (!d.alive())
    return Step{Outcome::unexpected_exit,
                fmt::format("cycle {}: daemon died during the workload: {}", cycle,
                            d.stop(SIGKILL, {}).status.value_or(ExitStatus::exited(0)).describe())};
  if (fault_kind == Fault::Kind::sigkill) {
    cr.fault_status = d.kill().status;
    return std::nullopt;
  }
  auto stop = d.stop(SIGTERM, spec_.stop_timeout);
  cr.fault_status = stop.status;
  if (stop.escalated)
    return Step{Outcome::unexpected_exit,
                fmt::format("cycle {}: SIGTERM ignored for {} (escalated to SIGKILL); the daemon "
                            "must exit on SIGTERM within --stop-timeout",
                            cycle, format_duration(spec_.stop_timeout))};
  if (stop.status && !stop.status->success())
    return Step{Outcome::unexpected_exit,
                fmt::format("cycle {}: on SIGTERM the daemon {} (expected exit code 0)", cycle,
                            stop.status->describe())};
  return std::nullopt;
}

CellResult CellRun::run() {
  CellResult result;
  result.run_dir = run_.root;
  auto finish = [&](Outcome o, std::string reason) {
    result.outcome = o;
    result.reason = std::move(reason);
    result.notify = rx_.counters();
    return result;
  };

  if (spec_.prepare) {
    auto r = run_shell(shell(*spec_.prepare, 0, "prepare.log"));
    if (!r) return finish(Outcome::harness_error, r.error().message);
    if (!r->status.success())
      return finish(Outcome::harness_error, fmt::format("--prepare {}", r->describe()));
  }

  auto first = start(0, 0);
  if (!first) return finish(Outcome::harness_error, first.error().message);
  std::optional<Daemon> daemon(std::move(*first));
  Duration ready_elapsed{};
  if (auto why = await_ready(*daemon, &ready_elapsed))
    return finish(daemon->alive() ? Outcome::not_ready : Outcome::unexpected_exit,
                  "before any fault: " + *why);
  result.first_ready = ready_elapsed;
  say(fmt::format("ready after {} (pid {})", format_duration(ready_elapsed), daemon->main_pid()));

  for (int cycle = 0; cycle < spec_.cycles; ++cycle) {
    CycleResult cr;
    cr.cycle = cycle;
    auto record = [&](Outcome o, std::string reason) {
      cr.outcome = o;
      cr.reason = reason;
      result.cycles.push_back(cr);
      return finish(o, std::move(reason));
    };
    if (auto step = apply_fault(*daemon, cycle, cr)) return record(step->outcome, step->reason);
    daemon.reset();
    say(fmt::format("cycle {}: {} -> {}", cycle, spec_.fault.to_string(),
                    cr.fault_status ? cr.fault_status->describe() : "exited"));
    if (auto step = run_checks(spec_.check_offline, cycle, "offline"))
      return record(step->outcome, step->reason);

    auto again = start(cycle + 1, 1);
    if (!again) return record(Outcome::harness_error, again.error().message);
    daemon.emplace(std::move(*again));
    Duration recovery{};
    if (auto why = await_ready(*daemon, &recovery))
      return record(Outcome::not_ready, fmt::format("cycle {}: after restart: {}", cycle, *why));
    cr.recovery = recovery;
    say(fmt::format("cycle {}: recovered, READY after {}", cycle, format_duration(recovery)));
    if (auto step = run_checks(spec_.check_online, cycle, "online"))
      return record(step->outcome, step->reason);
    result.cycles.push_back(cr);
  }
  auto last = daemon->stop(SIGTERM, spec_.stop_timeout);
  if (last.escalated) say("final stop: SIGTERM ignored, escalated to SIGKILL");
  return finish(Outcome::pass, fmt::format("{} cycle(s) of {} recovered and every check held",
                                           spec_.cycles, spec_.fault.to_string()));
}

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

}  // namespace

Result<CellResult> run_cell(const CellSpec& spec, const CellLog& log) {
  if (spec.target.empty()) return usage_error("no target: give the daemon command after --");
  if (spec.cycles < 1) return usage_error("--cycles must be at least 1");
  // Check the binary before creating anything, so a typo is a usage error (exit 2).
  if (spec.target[0].find('{') == std::string::npos) {
    auto exe = resolve_executable(spec.target[0]);
    if (!exe) return exe.error();
  }
  std::optional<Credentials> user;
  if (spec.user) {
    auto u = lookup_user(*spec.user);
    if (!u) return u.error();
    user = std::move(*u);
  }
  std::optional<std::pair<uid_t, gid_t>> owner;
  if (user) owner = std::make_pair(user->uid, user->gid);
  auto run = RunDir::create(spec.run_dir, owner);
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
  auto rx = NotifyReceiver::bind(run->notify_socket.string(), spec.notify_access,
                                 user ? std::optional<uid_t>(user->uid) : std::nullopt);
  if (!rx) {
    run->remove_unless_kept(false);
    return rx.error();
  }
  RunDir dir = *run;
  CellResult r = CellRun(spec, log, std::move(*run), std::move(user), std::move(*rx)).run();
  r.kept = spec.keep || r.outcome != Outcome::pass || !dir.created_by_us;
  dir.remove_unless_kept(r.kept);
  return r;
}

}  // namespace crashkit
