// The group cell (docs/replicas.md): N replicas of the target, each with its own run dir
// (run_dir/replica.I), notify socket, containment and loopback ports. All start, then each is
// awaited (a cluster member may get ready only once a quorum is up); the workload and checks run
// against the group; a fault hits the replicas its "@..." picks, which restart together.
// Phases: make_replicas, start_replicas, group_fault (workload, hit_replicas), offline checks,
// restart the hit replicas, online checks, all_alive; repeat per cycle; clean stop of all.
#include <fmt/format.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <numeric>
#include <random>

#include "cell_run.hpp"

namespace crashkit::detail {
namespace {

// The kernel's ephemeral range (ip_local_port_range): where bind(0) picks and, worse, where
// every connect() picks its source port. A port from it, closed for the daemon to bind, can be
// taken meanwhile by any client's connection on the machine (a replica once failed with
// "Address already in use" that way under a parallel test suite).
std::pair<int, int> ephemeral_range() {
  std::ifstream in("/proc/sys/net/ipv4/ip_local_port_range");
  int lo = 32768, hi = 60999;
  in >> lo >> hi;
  return {lo, hi};
}

// Binds a loopback port: `port` (0: the kernel's pick). The fd, or -1 with errno set.
int bind_loopback(int port, int& bound) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sa.sin_port = htons(static_cast<std::uint16_t>(port));
  socklen_t len = sizeof sa;
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) != 0) {
    const int err = errno;
    if (fd >= 0) close(fd);
    errno = err;
    return -1;
  }
  bound = ntohs(sa.sin_port);
  return fd;
}

// Loopback ports free at the time of asking, all bound at once (so none repeats) and kept bound
// in `held` until the cell's proxies have bound theirs; then closed for the daemons to bind.
// They are drawn at random below the ephemeral range, where no connect() picks its source port,
// so only a process binding that very port could take one in between (docs/replicas.md). With
// no room below the range (under 1000 ports), the kernel picks.
Result<std::vector<int>> free_ports(int n, HeldPorts& held) {
  const auto [lo, hi] = ephemeral_range();
  (void)hi;
  const bool below = lo - 1024 >= 1000;
  std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<int> pick(1024, std::max(1024, lo - 1));
  std::vector<int> ports;
  for (int i = 0; i < n; ++i) {
    int fd = -1, port = 0;
    for (int attempt = 0; below && fd < 0 && attempt < 64; ++attempt)
      fd = bind_loopback(pick(rng), port);
    if (fd < 0) fd = bind_loopback(0, port);
    if (fd < 0) {
      const int err = errno;
      held.release();
      return harness_error(fmt::format("no free loopback port for a replica: {}", strerror(err)));
    }
    held.hold(fd);
    ports.push_back(port);
  }
  return ports;
}

}  // namespace

std::optional<Verdict> CellRun::make_replicas() {
  auto ports = free_ports(2 * spec_.replicas, held_ports_);
  if (!ports) return Verdict{Outcome::harness_error, ports.error().message};
  std::optional<std::pair<uid_t, gid_t>> owner;
  if (user_) owner = std::make_pair(user_->uid, user_->gid);
  for (int i = 0; i < spec_.replicas; ++i) {
    auto dir = RunDir::create(run_.root / fmt::format("replica.{}", i), owner);
    if (!dir) return Verdict{Outcome::harness_error, dir.error().message};
    auto rx = NotifyReceiver::bind(dir->notify_socket.string(), spec_.notify_access,
                                   user_ ? std::optional<uid_t>(user_->uid) : std::nullopt);
    if (!rx) return Verdict{Outcome::harness_error, rx.error().message};
    Placeholders::Replica where{(*ports)[2 * i], (*ports)[2 * i + 1], dir->root.string(),
                                dir->data.string()};
    replicas_.push_back(std::unique_ptr<ReplicaRun>(new ReplicaRun{
        std::move(*dir), std::move(*rx), Containment::create(), std::move(where), std::nullopt}));
  }
  return std::nullopt;
}

// The replicas the fault hits this cycle. @minority and @majority are a choice seeded by the
// cell's seed and the cycle (in the repro line); @leader asks the spec's leader command.
Result<std::vector<int>> CellRun::pick_replicas(int cycle, const ReplicaPick& at) {
  const int n = spec_.replicas;
  std::vector<int> all = all_replicas();
  switch (at.kind) {
    case ReplicaPick::Kind::all:
      return all;
    case ReplicaPick::Kind::one:
      return std::vector<int>{at.index};
    case ReplicaPick::Kind::minority:
    case ReplicaPick::Kind::majority: {
      std::mt19937_64 rng(spec_.seed * 1000003u + static_cast<std::uint64_t>(cycle));
      std::shuffle(all.begin(), all.end(), rng);
      all.resize(at.kind == ReplicaPick::Kind::minority ? (n - 1) / 2 : n / 2 + 1);
      std::sort(all.begin(), all.end());
      return all;
    }
    case ReplicaPick::Kind::leader:
      break;
  }
  auto r = run_command(*spec_.leader, cycle, fmt::format("leader.{}.log", cycle));
  if (!r) return r.error();
  std::string_view out = r->output_tail;
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.remove_suffix(1);
  out = out.substr(out.rfind('\n') == std::string_view::npos ? 0 : out.rfind('\n') + 1);
  int index = -1;
  auto [end, ec] = std::from_chars(out.data(), out.data() + out.size(), index);
  if (!r->status.success() || ec != std::errc{} || end != out.data() + out.size() || index < 0 ||
      index >= n)
    return harness_error(fmt::format(
        "cycle {}: --leader {} must print the leader's index, 0 to {}; it {} (last line '{}')",
        cycle, shell_quote(placeholders(cycle).apply(*spec_.leader)), n - 1, r->describe(),
        printable_text(out, 60)));
  return std::vector<int>{index};
}

// 0 .. replicas-1.
std::vector<int> CellRun::all_replicas() const {
  std::vector<int> all(static_cast<std::size_t>(spec_.replicas));
  std::iota(all.begin(), all.end(), 0);
  return all;
}

// --prepare once per replica, with that replica's placeholders.
std::optional<Verdict> CellRun::prepare_replicas() {
  for (int i = 0; i < spec_.replicas; ++i) {
    AsReplica as(replica_, i);
    if (auto v = prepare()) return Verdict{v->outcome, fmt::format("replica {}: {}", i, v->reason)};
  }
  return std::nullopt;
}

// Starts each of `which` without waiting; replica `armed` with `arm` (CRASHKIT_PLAN, or the
// crossing counters of a discovery).
std::optional<Verdict> CellRun::launch_replicas(int cycle, int start_no,
                                                const std::vector<int>& which, int armed, Arm arm) {
  for (int i : which) {
    AsReplica as(replica_, i);
    auto d = start(cycle, start_no, i == armed ? arm : Arm::none);
    if (!d) return Verdict{Outcome::harness_error, d.error().message};
    replicas_[i]->daemon.emplace(std::move(*d));
    if (net_) net_->set_pid(i, replicas_[i]->daemon->main_pid());
  }
  return std::nullopt;
}

// Waits for each of `which` to get ready, in turn (they were all started first: a member of a
// cluster may report READY only once enough of the others are up). `when` starts a failure's
// reason; `took` gets each one's start -> READY, in `which` order. `restart`: say "recovered".
std::optional<Verdict> CellRun::await_replicas(const std::vector<int>& which,
                                               const std::string& when, std::vector<Duration>& took,
                                               bool restart) {
  for (int i : which) {
    AsReplica as(replica_, i);
    Duration elapsed{};
    if (auto why = await_ready(*replicas_[i]->daemon, &elapsed))
      return did_not_get_ready(fmt::format("{}replica {}: {}", when, i, *why));
    took.push_back(elapsed);
    say(fmt::format("replica {}: {} after {} (pid {})", i, restart ? "recovered" : "ready",
                    format_duration(elapsed), replicas_[i]->daemon->main_pid()));
  }
  return std::nullopt;
}

// Starts each of `which`, then awaits each. `cr`: a restart, whose recovery times it records.
std::optional<Verdict> CellRun::start_replicas(int cycle, int start_no,
                                               const std::vector<int>& which, CycleResult* cr) {
  if (auto v = launch_replicas(cycle, start_no, which)) return v;
  std::vector<Duration> took;
  auto v = await_replicas(
      which,
      cr != nullptr ? fmt::format("cycle {}: after restart: ", cr->cycle) : "before any fault: ",
      took, cr != nullptr);
  if (cr != nullptr) cr->recoveries.insert(cr->recoveries.end(), took.begin(), took.end());
  return v;
}

// A replica that died without being hit is a finding, named.
std::optional<Verdict> CellRun::all_alive(int cycle) {
  for (std::size_t i = 0; i < replicas_.size(); ++i) {
    auto& d = replicas_[i]->daemon;
    if (d && !d->alive())
      return Verdict{
          Outcome::unexpected_exit,
          fmt::format("cycle {}: replica {} died without a fault: {}", cycle, i, how_it_ended(*d))};
  }
  return std::nullopt;
}

// The workload, then the fault on the picked replicas (during the workload for sigkill-after).
std::optional<Verdict> CellRun::group_fault(int cycle, CycleResult& cr) {
  std::optional<ShellProcess> workload;
  const std::string log_name = fmt::format("workload.{}.log", cycle);
  if (auto v = net_on(cycle)) return v;
  if (spec_.workload) {
    auto w = ShellProcess::start(shell(*spec_.workload, cycle, log_name, &background_));
    if (!w) return Verdict{Outcome::harness_error, w.error().message};
    workload.emplace(std::move(*w));
  }
  if (spec_.fault.kind == Fault::Kind::sigkill_after ||
      spec_.fault.kind == Fault::Kind::powerloss_after) {
    std::vector<int> watch;
    for (auto& r : replicas_) watch.push_back(r->daemon->main_pidfd());
    rx_.wait([](const NotifyState&) { return false; }, Clock::now() + spec_.fault.after, watch);
    if (auto v = all_alive(cycle)) return v;
    auto v = hit_replicas(cycle, cr, spec_.fault);
    if (workload) note_left_behind(workload->finish(), log_name);  // may fail: replicas died
    return v;
  }
  if (workload) {
    ShellResult wr = workload->finish();
    note_left_behind(wr, log_name);
    if (auto v = all_alive(cycle)) return v;
    if (!wr.status.success() && !spec_.net.empty())  // a client under toxics: the checks judge
      note(fmt::format("cycle {}: workload under --net {}", cycle, wr.describe()));
    else if (!wr.status.success())
      return Verdict{cycle == 0 ? Outcome::harness_error : Outcome::violation,
                     fmt::format("cycle {}: workload {}", cycle, wr.describe())};
  }
  if (auto v = all_alive(cycle)) return v;
  return hit_replicas(cycle, cr, spec_.fault);
}

// SIGKILL, or the clean stop judged as systemd would, of each picked replica.
std::optional<Verdict> CellRun::hit_replicas(int cycle, CycleResult& cr, const Fault& fault) {
  if (fault.kind == Fault::Kind::none) return std::nullopt;  // every replica keeps running
  auto which = pick_replicas(cycle, fault.at);
  if (!which) return Verdict{Outcome::harness_error, which.error().message};
  cr.hit = *which;
  std::string how;
  for (int i : cr.hit) {
    Daemon& d = *replicas_[i]->daemon;
    if (fault.kind != Fault::Kind::sigterm) {
      cr.fault_status = d.kill().status;
    } else {
      auto stop = stop_clean(d, cycle);
      cr.fault_status = stop.status;
      if (stop.escalated || (stop.status && !spec_.clean_stop.clean(*stop.status)))
        return Verdict{Outcome::unexpected_exit,
                       fmt::format("cycle {}: replica {}: on {} the daemon {} (a clean stop is "
                                   "{} within --stop-timeout)",
                                   cycle, i, signal_name(spec_.clean_stop.signal),
                                   stop.escalated ? "ignored it (escalated to SIGKILL)"
                                                  : status_text(stop.status),
                                   spec_.clean_stop.describe_clean())};
    }
    how += fmt::format("{}replica {} {}", how.empty() ? "" : "; ", i, status_text(cr.fault_status));
  }
  say(fmt::format("cycle {}: {} -> {}", cycle, fault.to_string(), how));
  return cut_power_of(cycle, cr, fault);
}

// Power loss: each hit replica, killed with its whole tree above, loses what it never made
// durable, from its own journal; the cell's line joins what each rollback undid.
std::optional<Verdict> CellRun::cut_power_of(int cycle, CycleResult& cr, const Fault& fault) {
  std::string lines;
  for (int i : cr.hit) {
    AsReplica as(replica_, i);
    CycleResult one;
    if (auto v = cut_power(cycle, one, &fault))
      return Verdict{v->outcome, fmt::format("replica {}: {}", i, v->reason)};
    if (!one.powerloss.empty())
      lines += fmt::format("{}replica {}: {}", lines.empty() ? "" : "; ", i, one.powerloss);
  }
  cr.powerloss = lines;
  return std::nullopt;
}

CellResult CellRun::run_group() {
  CellResult result;
  result.run_dir = run_.root;
  if (auto v = make_replicas()) return finish(result, v->outcome, v->reason);
  if (auto v = prepare_replicas()) return finish(result, v->outcome, v->reason);
  if (auto v = start_replicas(0, 0, all_replicas(), nullptr))
    return finish(result, v->outcome, v->reason);
  for (int cycle = 0; cycle < spec_.cycles; ++cycle) {
    CycleResult cr;
    cr.cycle = cycle;
    auto v = group_fault(cycle, cr);
    net_off();  // the checks see a healed network
    if (v) return end_on(result, cr, *v);
    for (int i : cr.hit) replicas_[i]->daemon.reset();
    if (spec_.fault.kind != Fault::Kind::none)
      if (auto v = run_checks(spec_.check_offline, cycle, "offline")) return end_on(result, cr, *v);
    if (auto v = start_replicas(cycle + 1, 1, cr.hit, &cr)) return end_on(result, cr, *v);
    if (!cr.recoveries.empty())
      cr.recovery = *std::max_element(cr.recoveries.begin(), cr.recoveries.end());
    if (auto v = run_checks(spec_.check_online, cycle, "online")) return end_on(result, cr, *v);
    if (auto v = all_alive(cycle)) return end_on(result, cr, *v);
    result.cycles.push_back(cr);
  }
  for (auto& r : replicas_) stop_clean(*r->daemon, spec_.cycles);
  return finish(result, Outcome::pass,
                fmt::format("{} cycle(s) of {} on {} replicas {}and every check held", spec_.cycles,
                            spec_.fault.to_string(), spec_.replicas,
                            spec_.fault.kind == Fault::Kind::none ? "" : "recovered "));
}

}  // namespace crashkit::detail

namespace crashkit {

std::optional<Error> group_error(const CellSpec& spec) {
  if (spec.replicas < 1 || spec.replicas > 64)
    return usage_error(fmt::format("--replicas {}: give 1 to 64", spec.replicas));
  if (!is_group(spec)) return std::nullopt;
  for (const auto& step : spec.steps) {
    if (step.kind == ScenarioStep::Kind::fault) {
      const auto k = step.fault.kind;
      if (k != Fault::Kind::sigterm && k != Fault::Kind::sigkill && k != Fault::Kind::powerloss)
        return usage_error(
            fmt::format("step '{}': a scenario's fault is sigterm@PICK, sigkill@PICK or "
                        "powerloss@PICK",
                        step.text));
      CellSpec one = spec;
      one.steps.clear();
      one.fault = step.fault;
      if (auto e = group_error(one)) return e;
    }
    const auto restarted = replica_index(step.replicas);
    if (step.kind == ScenarioStep::Kind::restart && step.replicas != "all" &&
        (!restarted || *restarted >= spec.replicas))
      return usage_error(
          fmt::format("step '{}': there are replicas 0 to {}", step.text, spec.replicas - 1));
    if (step.kind == ScenarioStep::Kind::workload && !spec.workload)
      return usage_error(fmt::format("step '{}': there is no workload to run", step.text));
  }
  if (!spec.steps.empty()) return std::nullopt;  // the steps' faults, not spec.fault
  const ReplicaPick& at = spec.fault.at;
  const std::string fault = spec.fault.to_string();
  if (spec.fault.kind == Fault::Kind::crash_plan && spec.fault.at.kind != ReplicaPick::Kind::one)
    return usage_error(fmt::format(
        "--plan with --replicas {}: name the one replica it is armed in (--plan-replica I)",
        spec.replicas));
  if (at.kind == ReplicaPick::Kind::one && at.index >= spec.replicas)
    return usage_error(fmt::format("--fault {}: there are replicas 0 to {}; pick one of them",
                                   fault, spec.replicas - 1));
  if (at.kind == ReplicaPick::Kind::minority && spec.replicas < 3)
    return usage_error(fmt::format(
        "--fault {}: a minority of {} replica(s) is none (floor((N-1)/2)); use 3 or more", fault,
        spec.replicas));
  if (at.kind == ReplicaPick::Kind::leader && !spec.leader)
    return usage_error(fmt::format(
        "--fault {}: @leader needs --leader CMD, a command printing the leader's index", fault));
  if (spec.ready_when && spec.ready_when->starts_with("tcp:") && spec.replicas > 1 &&
      spec.ready_when->find('{') == std::string::npos)
    return usage_error(fmt::format(
        "--ready-when {}: with --replicas every replica needs its own address; use {{addr}}",
        *spec.ready_when));
  return std::nullopt;
}

}  // namespace crashkit
