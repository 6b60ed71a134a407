#include "run_command.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <limits>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "cell/ready_when.hpp"
#include "crashkit/crash_protocol.hpp"  // parse_number
#include "crashkit/harness/cell.hpp"
#include "crashkit/harness/unit_file.hpp"

namespace crashkit::cli {
namespace {

struct RunOptions {
  std::string fault = "sigkill";
  int cycles = 1;
  std::string workload;
  std::string prepare;
  std::string before_start;
  std::string ready_when;
  std::vector<std::string> checks;
  std::vector<std::string> checks_offline;
  std::string ready_timeout = "10s";
  std::string stop_timeout = "10s";
  std::string stop_signal = "SIGTERM";
  std::vector<std::string> success_exit_status;
  std::string command_timeout = "10m";
  std::string notify_access = "main";
  std::string run_dir;
  std::string user;
  bool keep = false;
  bool quiet = false;
  std::string plan;
  std::string plan_on = "start";
  bool json = false;  // discover
  std::string powerloss_model = "strict";
  std::vector<std::string> powerloss_scope;
  std::string seed = "1";
  std::vector<std::string> target;
  std::string unit;
  std::vector<std::string> env;
  std::vector<std::string> rlimits;                 // --rlimit NAME=VALUE
  std::string disk_full, disk_free = "0", fill_at;  // --disk-full, --disk-free, --fill-at
  std::string memory;                               // --memory SIZE
  int replicas = 1;
  int plan_replica = -1;
  int discover_replica = -1;            // discover --replica I (in a group)
  std::vector<std::string> links, net;  // --link NAME=TO, --net LINK:TOXIC
  bool peer_links = false;
  std::string peers_format = "{peer_addr}";
  std::string leader;
  CLI::App* app = nullptr;  // to ask which flags were given (they win over --unit's settings)
  bool given(const char* flag) const { return app != nullptr && app->count(flag) > 0; }
};

// --unit: the daemon's own systemd unit under the flags that were given. Notes (settings that
// do not map) go to stderr.
Status apply_unit_file(const RunOptions& o, CellSpec& s) {
  auto u = read_unit_file(o.unit);
  if (!u) return u.error();
  GivenFlags g;
  g.stop_signal = o.given("--stop-signal");
  g.success_exit_status = o.given("--success-exit-status");
  g.ready_timeout = o.given("--ready-timeout");
  g.stop_timeout = o.given("--stop-timeout");
  g.user = o.given("--user");
  g.before_start = o.given("--before-start");
  g.notify_access = o.given("--notify-access");
  auto notes = apply_unit(*u, g, s);
  if (!notes) return notes.error();
  for (const auto& n : *notes) fmt::print(stderr, "crashkit: --unit {}: {}\n", o.unit, n);
  return Ok{};
}

int fail(const Error& e) {
  fmt::print(stderr, "crashkit: {}\n", e.message);
  return e.kind == ErrorKind::usage ? exit_code::usage : exit_code::harness_error;
}

Result<CellSpec> to_spec(const RunOptions& o) {
  CellSpec s;
  auto fault =
      o.plan.empty() ? Fault::parse(o.fault) : Fault::crash(o.plan, o.plan_on == "restart");
  if (!fault) return fault.error();
  s.fault = *fault;
  if (o.plan_replica >= 0) {
    if (o.plan.empty()) return usage_error("--plan-replica goes with --plan");
    s.fault.at = ReplicaPick::replica(o.plan_replica);
  }
  if (o.discover_replica >= 0) s.fault.at = ReplicaPick::replica(o.discover_replica);
  s.cycles = o.cycles;
  s.replicas = o.replicas;
  s.peers_format = o.peers_format;
  if (!o.leader.empty()) s.leader = o.leader;
  if (!o.workload.empty()) s.workload = o.workload;
  if (!o.prepare.empty()) s.prepare = o.prepare;
  if (!o.before_start.empty()) s.before_start = o.before_start;
  if (!o.ready_when.empty()) {
    if (auto r = parse_ready_when("--ready-when", o.ready_when); !r) return r.error();
    s.ready_when = o.ready_when;
  }
  s.check_online = o.checks;
  if (!o.disk_full.empty()) {
    auto d = parse_disk_full("--disk-full", o.disk_full);
    if (!d) return d.error();
    auto free = parse_byte_size(o.disk_free);
    if (!free)
      return usage_error(fmt::format("--disk-free '{}': give a size in bytes, e.g. 0, 4K, 1M",
                                     printable_text(o.disk_free, 40)));
    d->free = *free;
    if (!o.fill_at.empty())
      if (auto ok = parse_fill_at("--fill-at", o.fill_at, *d); !ok) return ok.error();
    s.disk_full = *d;
  } else if (o.given("--disk-free") || o.given("--fill-at")) {
    return usage_error("--disk-free and --fill-at go with --disk-full tmpfs:SIZE or fs");
  }
  if (!o.memory.empty()) {
    auto bytes = parse_memory_limit("--memory", o.memory);
    if (!bytes) return bytes.error();
    s.memory = *bytes;
  }
  for (const auto& text : o.rlimits) {
    auto l = parse_resource_limit("--rlimit", text);
    if (!l) return l.error();
    s.rlimits.push_back(*l);
  }
  s.check_offline = o.checks_offline;
  for (const auto& l : o.links) {
    const auto eq = l.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == l.size())
      return usage_error(fmt::format(
          "--link '{}': give NAME=TO, TO a replica index or HOST:PORT or unix:PATH", l));
    s.links.push_back({l.substr(0, eq), l.substr(eq + 1)});
  }
  for (const auto& t : o.net) {
    auto x = parse_net_toxic(t);
    if (!x) return x.error();
    s.net.push_back(*x);
  }
  s.peer_links = o.peer_links;
  for (auto [text, field, name] :
       {std::tuple{&o.ready_timeout, &s.ready_timeout, "--ready-timeout"},
        std::tuple{&o.stop_timeout, &s.stop_timeout, "--stop-timeout"},
        std::tuple{&o.command_timeout, &s.command_timeout, "--command-timeout"}}) {
    auto d = parse_duration(name, *text);
    if (!d) return d.error();
    *field = *d;
  }
  auto sig = parse_signal("--stop-signal", o.stop_signal);
  if (!sig) return sig.error();
  s.clean_stop.signal = *sig;
  for (const auto& list : o.success_exit_status)
    if (auto ok = s.clean_stop.add_success("--success-exit-status", list); !ok) return ok.error();
  s.notify_access = o.notify_access == "all" ? NotifyAccess::all : NotifyAccess::main;
  s.run_dir = o.run_dir;
  s.keep = o.keep;
  if (!o.user.empty()) s.user = o.user;
  s.powerloss_model =
      o.powerloss_model == "ext4" ? powerloss::Model::ext4 : powerloss::Model::strict;
  s.powerloss_scope = o.powerloss_scope;
  auto seed = parse_number<std::uint64_t>(o.seed);
  if (!seed)
    return usage_error(fmt::format("--seed '{}': give a whole number from 0 to {}", o.seed,
                                   std::numeric_limits<std::uint64_t>::max()));
  s.seed = *seed;
  s.target = o.target;
  for (const auto& kv : o.env) {
    if (kv.find('=') == std::string::npos || kv.front() == '=')
      return usage_error(fmt::format("--env '{}': give KEY=VALUE", printable_text(kv)));
    s.extra_env.push_back(kv);
  }
  if (!o.unit.empty())
    if (auto ok = apply_unit_file(o, s); !ok) return ok.error();
  return s;
}

int execute(const RunOptions& o) {
  auto spec = to_spec(o);
  if (!spec) return fail(spec.error());
  CellLog log;
  if (!o.quiet) log = [](std::string_view line) { fmt::print(stderr, "crashkit: {}\n", line); };
  auto r = run_cell(*spec, log);
  if (!r) return fail(r.error());
  std::vector<Duration> rec;
  for (const auto& c : r->cycles)
    if (c.recovery) rec.push_back(*c.recovery);
  std::string recovery;
  if (!rec.empty()) {
    std::sort(rec.begin(), rec.end());
    recovery = fmt::format("; recovery (restart -> READY) min {} median {} max {}",
                           format_duration(rec.front()), format_duration(rec[rec.size() / 2]),
                           format_duration(rec.back()));
  }
  fmt::print("{}: {}{}\n", to_string(r->outcome), r->reason, recovery);
  for (const auto& n : r->notes) fmt::print("note: {}\n", n);
  if (r->notify.rejected() > 0)
    fmt::print(
        "notify: {} datagram(s) accepted, {} rejected (no credentials {}, oversized {}, "
        "malformed {}, foreign sender {})\n",
        r->notify.accepted, r->notify.rejected(), r->notify.no_credentials, r->notify.oversized,
        r->notify.malformed, r->notify.foreign_sender);
  if (r->kept) fmt::print("run dir kept: {}\n", r->run_dir.string());
  return exit_code_for(r->outcome);
}

void add_cell_options(CLI::App* run, RunOptions& o) {
  o.app = run;
  run->add_option("--link", o.links,
                  "NAME=TO: a proxied link {proxy:NAME} forwarding to TO, a replica index or "
                  "HOST:PORT or unix:PATH (repeatable; docs/network.md)")
      ->allow_extra_args(false);
  run->add_flag("--peer-links", o.peer_links,
                "a proxy in front of each replica's peer port; {peer_addr} names it");
  run->add_option("--net", o.net,
                  "LINK:TOXIC on while each workload runs, e.g. client:latency(50ms), "
                  "peers:reset_peer(100B) (repeatable)")
      ->allow_extra_args(false);
  run->add_option("--env", o.env,
                  "KEY=VALUE for the target and every command (repeatable; placeholders allowed; "
                  "wins over --unit's Environment=)")
      ->allow_extra_args(false);
  run->add_option("--rlimit", o.rlimits,
                  "a resource limit for the target, as systemd's Limit*=: NOFILE=64, AS=512M, "
                  "NOFILE=64:1024 (repeatable; wins over --unit's; docs/resource-limits.md)")
      ->allow_extra_args(false);
  run->add_option("--memory", o.memory,
                  "a cgroup memory limit for the target's tree, e.g. 256M (needs a memory cgroup "
                  "crashkit may create); an OOM kill is named in the reason");
  run->add_option("--disk-full", o.disk_full,
                  "the data dir runs out of space: tmpfs:SIZE (a tmpfs of SIZE on it; needs "
                  "root), ext4:SIZE (a loop-mounted ext4 image; root) or fs (its own file "
                  "system, filled); docs/resource-limits.md");
  run->add_option("--disk-free", o.disk_free, "--disk-full: bytes the filler leaves free (0)");
  run->add_option("--fill-at", o.fill_at,
                  "--disk-full: fill this long into the first workload, or op:K after its Kth "
                  "acknowledged operation (default: before the first start)");
  run->add_option("--unit", o.unit,
                  "the daemon's systemd unit: Type=, NotifyAccess=, KillSignal=, "
                  "SuccessExitStatus=, TimeoutStartSec=, TimeoutStopSec=, User=, Environment=, "
                  "ExecStartPre=, Limit*= are taken from it; flags given here win");
  run->add_option("--workload", o.workload, "shell command run after READY, before the fault");
  run->add_option("--prepare", o.prepare, "shell command run once before the first start");
  run->add_option("--before-start", o.before_start,
                  "shell command run before every start, as systemd's ExecStartPre= (e.g. "
                  "removing a stale unix socket)");
  // One value per occurrence, so a repeated option never swallows the "--" or TARGET.
  run->add_option("--check", o.checks, "online check after the restart's READY (repeatable)")
      ->allow_extra_args(false);
  run->add_option("--check-offline", o.checks_offline,
                  "offline check while the daemon is down (repeatable)")
      ->allow_extra_args(false);
  run->add_option("--ready-when", o.ready_when,
                  "for daemons without sd_notify: ready once tcp:HOST:PORT or unix:PATH accepts "
                  "a connection, or cmd:COMMAND exits 0 (polled; weaker than READY=1)");
  run->add_option("--ready-timeout", o.ready_timeout, "start -> READY limit")
      ->capture_default_str();
  run->add_option("--stop-timeout", o.stop_timeout, "stop signal -> exit limit")
      ->capture_default_str();
  run->add_option("--stop-signal", o.stop_signal,
                  "the clean stop's signal, as systemd's KillSignal= (SIGINT, 2, ...)")
      ->capture_default_str();
  run->add_option("--success-exit-status", o.success_exit_status,
                  "exit codes and signals that also count as a clean stop, as systemd's "
                  "SuccessExitStatus= ('75 SIGUSR1'; repeatable)")
      ->allow_extra_args(false);
  run->add_option("--command-timeout", o.command_timeout,
                  "limit for each workload, prepare and check command")
      ->capture_default_str();
  run->add_option("--notify-access", o.notify_access, "which senders are heard")
      ->check(CLI::IsMember({"main", "all"}))
      ->capture_default_str();
  run->add_option("--powerloss-model", o.powerloss_model,
                  "power loss: strict (POSIX: a new entry needs its directory fsynced) or ext4 "
                  "(any fsync commits every earlier directory change, as ext4/XFS do)")
      ->check(CLI::IsMember({"strict", "ext4"}))
      ->capture_default_str();
  run->add_option("--powerloss-scope", o.powerloss_scope,
                  "power loss: a directory whose files lose power (repeatable; default {data_dir})")
      ->allow_extra_args(false);
  run->add_option("--seed", o.seed, "power loss: which unsynced writes survive subset/torn")
      ->capture_default_str();
  run->add_option("--run-dir", o.run_dir, "run directory (default: a new dir under $TMPDIR)");
  run->add_option("--user", o.user, "run the target and commands as this user (needs root)");
  run->add_flag("--keep", o.keep, "keep the run dir even when the cell passes");
  run->add_flag("-q,--quiet", o.quiet, "only the final result line");
  run->add_option("target", o.target, "TARGET [ARGS...] after --")->required();
}

int execute_discover(const RunOptions& o) {
  if (o.replicas > 1 && o.discover_replica < 0)
    return fail(usage_error(fmt::format(
        "discover --replicas {}: crossings are counted in one replica; name it (--replica I)",
        o.replicas)));
  if (o.discover_replica >= o.replicas)
    return fail(usage_error(fmt::format("discover --replica {}: there are replicas 0 to {}",
                                        o.discover_replica, o.replicas - 1)));
  auto spec = to_spec(o);
  if (!spec) return fail(spec.error());
  CellLog log;
  if (!o.quiet) log = [](std::string_view line) { fmt::print(stderr, "crashkit: {}\n", line); };
  auto d = discover(*spec, log);
  if (!d) return fail(d.error());
  // On stderr: stdout may be JSON.
  if (d->kept) fmt::print(stderr, "crashkit: run dir kept: {}\n", d->run_dir.string());
  for (const auto& n : d->notes) fmt::print(stderr, "crashkit: note: {}\n", n);
  std::map<std::string, std::pair<std::uint64_t, std::uint64_t>> rows;
  for (const auto& [name, n] : d->run) rows[name].first = n;
  for (const auto& [name, n] : d->recovery) rows[name].second = n;
  if (o.json) {
    nlohmann::json j = nlohmann::json::object();
    for (const auto& [name, c] : rows) j[name] = {{"run", c.first}, {"recovery", c.second}};
    fmt::print("{}\n", j.dump(2));
    return exit_code::ok;
  }
  fmt::print("{:<40} {:>12} {:>12}\n", "point", "run", "recovery");
  for (const auto& [name, c] : rows) fmt::print("{:<40} {:>12} {:>12}\n", name, c.first, c.second);
  return exit_code::ok;
}

}  // namespace

std::function<int()> add_run_command(CLI::App& app) {
  auto o = std::make_shared<RunOptions>();
  CLI::App* run = app.add_subcommand(
      "run", "Start TARGET, wait for READY, run the workload, apply a fault, restart, check.");
  run->footer(
      "Placeholders {data_dir} {run_dir} {scratch} {ledger} {cycle} are replaced in TARGET, its\n"
      "arguments, and every command. Commands run with /bin/sh -c in the run dir.\n"
      "Crash plans (--plan): POINT@N=ACTION (Nth crossing), POINT@N+=ACTION (from the Nth on),\n"
      "POINT@%K=ACTION (every Kth); ';' separates rules. Actions: kill abort segv throw hang "
      "pause\n"
      "exit(CODE) error(ENOSPC|EIO|...) delay(200ms) powerloss. 'crashkit points TARGET' lists "
      "the points.\n"
      "Power loss (--fault powerloss*, or a plan's powerloss action): the target runs under a\n"
      "journal shim; after the SIGKILL, what it never made durable is undone before the restart\n"
      "(report: artifacts/powerloss.N.txt; docs/power-loss.md).\n"
      "Exit codes: 0 no findings, 1 finding, 2 usage error, 3 harness error.\n"
      "Example:\n"
      "  crashkit run --fault sigkill --cycles 3 \\\n"
      "    --workload 'redis-cli -s {run_dir}/r.sock set k v' \\\n"
      "    --check 'test \"$(redis-cli -s {run_dir}/r.sock get k)\" = v' \\\n"
      "    -- redis-server --supervised systemd --port 0 --unixsocket {run_dir}/r.sock \\\n"
      "       --appendonly yes --appendfsync always --dir {data_dir}");
  run->add_option("--fault", o->fault,
                  "sigterm | sigkill | sigkill-after=DURATION | powerloss | powerloss(subset) | "
                  "powerloss(torn) | powerloss-after=DURATION | none (no process fault: the "
                  "workload under --net, then the checks); with --replicas: sigkill@1, "
                  "sigterm@minority, sigkill-after=200ms@leader, ...")
      ->capture_default_str();
  run->add_option("--plan", o->plan, "crash plan for the daemon's crash points (replaces --fault)");
  run->add_option("--plan-on", o->plan_on,
                  "arm the plan on the first start, or on the restart "
                  "after a SIGKILL (recovery points)")
      ->check(CLI::IsMember({"start", "restart"}))
      ->capture_default_str();
  run->add_option("--cycles", o->cycles, "fault+restart cycles in one run")
      ->capture_default_str()
      ->check(at_least_one());
  run->add_option("--replicas", o->replicas,
                  "start N copies of the target as a group; the fault's @1, @minority, "
                  "@majority, @all, @leader picks which are hit (docs/replicas.md)")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  run->add_option("--peers-format", o->peers_format,
                  "one entry of {peers} / {members}, e.g. 'n{replica}=http://{peer_addr}'")
      ->capture_default_str();
  run->add_option("--plan-replica", o->plan_replica,
                  "with --replicas: the replica whose crash points --plan arms")
      ->check(CLI::Range(0, 63));
  run->add_option("--leader", o->leader,
                  "shell command printing the leader's replica index (for @leader)");
  add_cell_options(run, *o);
  return [o] { return execute(*o); };
}

std::function<int()> add_discover_command(CLI::App& app) {
  auto o = std::make_shared<RunOptions>();
  CLI::App* cmd = app.add_subcommand(
      "discover",
      "Run the workload once without a fault and count each crash point's crossings "
      "(first start + workload, and recovery after a SIGKILL).");
  cmd->add_flag("--json", o->json, "print JSON: {point: {run: N, recovery: M}}");
  cmd->add_option("--replicas", o->replicas,
                  "start N copies of the target as a group (docs/replicas.md)")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  cmd->add_option("--replica", o->discover_replica,
                  "with --replicas: the replica whose crossings are counted (its restart after "
                  "a SIGKILL counts recovery while the others serve)")
      ->check(CLI::Range(0, 63));
  cmd->add_option("--peers-format", o->peers_format,
                  "one entry of {peers} / {members}, e.g. 'n{replica}=http://{peer_addr}'")
      ->capture_default_str();
  add_cell_options(cmd, *o);
  return [o] { return execute_discover(*o); };
}

}  // namespace crashkit::cli
