// Expanding a matrix spec into cells (with discovery and seeded sampling), sharding, and
// running the cells on a pool of worker threads.
#include "crashkit/harness/matrix.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "crashkit/crash_protocol.hpp"
#include "crashkit/harness/child.hpp"
#include "crashkit/harness/compiled_points.hpp"

namespace crashkit {
namespace {

std::string slug(std::string_view s) {
  std::string out;
  for (char c : s) out += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return out;
}

std::string action_slug(const std::string& action) {
  std::string out;
  for (char c : action)
    if (std::isalnum(static_cast<unsigned char>(c))) out += static_cast<char>(std::tolower(c));
  return out;
}

}  // namespace

std::string shell_quote(std::string_view w) {
  if (!w.empty() && w.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                        "0123456789_-./=:@%+,{}") == std::string_view::npos)
    return std::string(w);
  std::string out = "'";
  for (char c : w) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  return out + "'";
}

std::string repro_command(const CellSpec& s) {
  std::string cmd = "crashkit run";
  auto opt = [&](std::string_view name, std::string_view value) {
    cmd += fmt::format(" {} {}", name, shell_quote(value));
  };
  if (s.fault.kind == Fault::Kind::crash_plan) {
    opt("--plan", s.fault.plan);
    if (s.fault.on_restart) opt("--plan-on", "restart");
  } else {
    opt("--fault", s.fault.to_string());
    if (s.cycles != 1) opt("--cycles", std::to_string(s.cycles));
  }
  if (is_group(s)) {
    opt("--replicas", std::to_string(s.replicas));
    if (s.fault.kind == Fault::Kind::crash_plan) opt("--plan-replica", s.fault.at.text);
    if (s.peers_format != "{peer_addr}") opt("--peers-format", s.peers_format);
    if (s.leader) opt("--leader", *s.leader);
    const auto pick = s.fault.at.kind;
    if (pick == ReplicaPick::Kind::minority || pick == ReplicaPick::Kind::majority)
      opt("--seed", std::to_string(s.seed));
  }
  for (const auto& l : s.links) opt("--link", l.name + "=" + l.to);
  if (s.peer_links) cmd += " --peer-links";
  for (const auto& t : s.net) opt("--net", t.toxic.text);
  if (s.fault.loses_power()) {
    if (s.powerloss_model == powerloss::Model::ext4) opt("--powerloss-model", "ext4");
    for (const auto& d : s.powerloss_scope) opt("--powerloss-scope", d);
    if (s.fault.crash_state != powerloss::CrashState::drop) opt("--seed", std::to_string(s.seed));
  }
  opt("--ready-timeout", format_duration(s.ready_timeout));
  if (s.ready_when) opt("--ready-when", *s.ready_when);
  opt("--stop-timeout", format_duration(s.stop_timeout));
  if (s.clean_stop.signal != SIGTERM) opt("--stop-signal", signal_name(s.clean_stop.signal));
  if (auto extra = s.clean_stop.success_list(); !extra.empty()) opt("--success-exit-status", extra);
  if (s.notify_access == NotifyAccess::all) opt("--notify-access", "all");
  if (s.user) opt("--user", *s.user);
  for (const auto& l : s.rlimits) opt("--rlimit", l.text);
  if (s.memory) opt("--memory", std::to_string(*s.memory));
  if (s.disk_full) {
    opt("--disk-full", s.disk_full->text);
    if (s.disk_full->free != 0) opt("--disk-free", std::to_string(s.disk_full->free));
    if (s.disk_full->fills_later()) opt("--fill-at", s.disk_full->fill_at_text());
  }
  if (s.prepare) opt("--prepare", *s.prepare);
  if (s.before_start) opt("--before-start", *s.before_start);
  if (s.workload) opt("--workload", *s.workload);
  for (const auto& c : s.check_offline) opt("--check-offline", c);
  for (const auto& c : s.check_online) opt("--check", c);
  std::string prefix;
  for (const auto& e : s.extra_env) prefix += shell_quote(e) + " ";
  cmd += " --";
  for (const auto& a : s.target) cmd += " " + shell_quote(a);
  return prefix.empty() ? cmd : "env " + prefix + cmd;
}

std::string repro_line(const MatrixCell& cell) {
  return cell.repro.empty() ? repro_command(cell.spec) : cell.repro;
}

std::string fault_label(const CellSpec& spec) {
  if (!spec.steps.empty()) return "scenario";
  std::string label = spec.fault.to_string();
  if (!spec.net.empty()) {  // "none + net client:reset_peer(0B)"
    label += " + net";
    for (const auto& t : spec.net) label += " " + t.toxic.text;
  }
  return label;
}

namespace {

// What discovery found out about the target before its cells are listed. A single daemon has
// one discovery (key -1); a group one per replica its crash points are armed in (key I).
struct Coverage {
  std::map<int, Discovery> counts;  // crossings in the run and in recovery
  std::vector<PointName> compiled;  // the points compiled into the target (may be empty)
  std::map<int, std::set<std::string>> crossed;  // points crossed in the run or in recovery
  std::vector<std::string> notes;                // the discovery runs' notes
};

std::uint64_t count_of(const CrossingCounts& counts, const std::string& point) {
  auto it = counts.find(point);
  return it == counts.end() ? 0 : it->second;
}

int replica_key(const MatrixFault& f) {
  return f.at.text.empty() ? -1 : f.at.index;
}

// Runs discovery once per replica a crash-points fault is armed in (once for a single daemon),
// and reads the target's compiled points.
Result<Coverage> discover_coverage(const MatrixSpec& spec, const CellLog& log) {
  Coverage c;
  std::set<int> where;
  for (const auto& f : spec.faults)
    if (f.kind == MatrixFault::Kind::crash_points) where.insert(replica_key(f));
  if (where.empty()) return c;
  for (int r : where) {
    CellSpec ds = spec.base;
    ds.fault = Fault{};
    if (r >= 0) ds.fault.at = ReplicaPick::replica(r);
    auto d = discover(ds, log);
    if (!d) return d.error();
    auto& crossed = c.crossed[r];
    for (const auto* counts : {&d->run, &d->recovery})
      for (const auto& [name, n] : *counts)
        if (n > 0) crossed.insert(name);
    c.notes.insert(c.notes.end(), d->notes.begin(), d->notes.end());
    c.counts[r] = std::move(*d);
  }
  if (auto exe = resolve_executable(spec.base.target[0])) {
    if (auto pts = read_compiled_points(*exe)) c.compiled = *pts;
  }
  return c;
}

// Compiled points no discovery run crossed.
std::vector<std::string> uncovered_points(const Coverage& c) {
  std::vector<std::string> out;
  for (const auto& p : c.compiled)
    if (std::none_of(c.crossed.begin(), c.crossed.end(),
                     [&](const auto& kv) { return kv.second.count(p.name) > 0; }))
      out.push_back(p.name);
  return out;
}

// "recovery_wal_append_write_at_3_kill".
std::string crash_cell_id(const std::string& point, std::uint64_t crossing,
                          const std::string& action, bool recovery) {
  return fmt::format("{}{}_at_{}_{}", recovery ? "recovery_" : "", slug(point), crossing,
                     action_slug(action));
}

// Lists the cells of a matrix fault by fault, in a stable order; the seed picks the samples.
class CellLister {
 public:
  CellLister(const MatrixSpec& spec, const Coverage& coverage, std::uint64_t seed)
      : spec_(spec), coverage_(coverage), rng_(seed), seed_(seed) {}

  Status add_fault(const MatrixFault& f) {
    if (f.kind == MatrixFault::Kind::crash_points) return add_crash_cells(f);
    add_signal_cells(f);
    return ok();
  }

  std::vector<MatrixCell> take() { return std::move(cells_); }

 private:
  void add(std::string id, Fault fault, std::string point = {}, std::uint64_t crossing = 0) {
    CellSpec s = spec_.base;
    s.fault = std::move(fault);
    s.seed = seed_;
    cells_.push_back({std::move(id), std::move(s), std::move(point), crossing});
  }

  void add_signal_cells(const MatrixFault& f) {
    // "sigkill@minority" is the cell "sigkill_at_minority".
    const std::string at = f.at.text.empty() ? "" : "_at_" + f.at.text;
    auto picked = [&](Fault fault) {
      fault.at = f.at;
      return fault;
    };
    if (f.kind == MatrixFault::Kind::powerloss) {
      Fault fault = picked(*Fault::parse(f.powerloss));
      std::string id = action_slug(f.powerloss);  // "powerloss", "powerlosstorn", ...
      if (fault.kind == Fault::Kind::powerloss_after)
        id = "powerloss_after_" + slug(format_duration(fault.after));
      else if (fault.crash_state != powerloss::CrashState::drop)
        id = fmt::format("powerloss_{}_seed{}", id.substr(9), seed_);  // which writes survive
      add(id + at, fault);
      return;
    }
    if (f.kind == MatrixFault::Kind::sigterm) {
      add("sigterm" + at, picked(*Fault::parse("sigterm")));
      return;
    }
    if (f.kind == MatrixFault::Kind::net) {  // "client:reset_peer(0B)": "net_client_reset_peer_0b"
      std::string id = "net";
      for (const auto& t : f.net)
        for (char c : "_" + t.toxic.text) {  // lower case, one '_' between words
          if (std::isalnum(static_cast<unsigned char>(c)))
            id += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
          else if (id.back() != '_')
            id += '_';
        }
      while (id.back() == '_') id.pop_back();
      add(id, *Fault::parse("none"));
      auto& net = cells_.back().spec.net;
      net.insert(net.end(), f.net.begin(), f.net.end());
      return;
    }
    if (f.after.empty()) add("sigkill" + at, picked(*Fault::parse("sigkill")));
    for (auto d : f.after)
      add("sigkill_after_" + slug(format_duration(d)) + at,
          picked(Fault{Fault::Kind::sigkill_after, d, {}, false}));
  }

  // One cell per point x phase x crossing.
  Status add_crash_cells(const MatrixFault& f) {
    if (auto s = check_named_points(f); !s) return s;
    std::vector<std::string> points = f.points;
    if (points.empty()) {
      const auto& crossed = coverage_.crossed.at(replica_key(f));
      points.assign(crossed.begin(), crossed.end());
    }
    for (const auto& p : points) {
      for (bool recovery : {false, true}) {
        if (f.phase == (recovery ? MatrixFault::Phase::run : MatrixFault::Phase::recovery))
          continue;
        for (auto x : crossings(f, p, recovery)) {
          auto fault = Fault::crash(fmt::format("{}@{}={}", p, x, f.action), recovery);
          if (!fault) return fault.error();
          fault->at = f.at;  // crash_points: {replica: I}: armed in that replica only
          add(crash_cell_id(p, x, f.action, recovery) + (f.at.text.empty() ? "" : "_r" + f.at.text),
              *fault, p, x);
        }
      }
    }
    return ok();
  }

  // A named point must be compiled into the target (when the target lists its points).
  Status check_named_points(const MatrixFault& f) const {
    const auto& compiled = coverage_.compiled;
    for (const auto& p : f.points) {
      bool known = compiled.empty() || std::any_of(compiled.begin(), compiled.end(),
                                                   [&](auto& c) { return c.name == p; });
      if (!known)
        return usage_error(fmt::format(
            "{}: crash_points names unknown point '{}'; `crashkit points {}` lists them",
            spec_.file.string(), printable_text(p, 60), spec_.base.target[0]));
    }
    return ok();
  }

  // The crossings of `point` that get a cell in the run (or recovery) phase.
  std::vector<std::uint64_t> crossings(const MatrixFault& f, const std::string& point,
                                       bool recovery) {
    const Discovery& d = coverage_.counts.at(replica_key(f));
    const std::uint64_t have = count_of(recovery ? d.recovery : d.run, point);
    if (!f.crossings.empty()) {
      // Explicit crossings run even beyond the discovered count (then: fault_not_reached),
      // but only in the phase where the point is crossed at all; a named point that recovery
      // never crosses gets its run cells.
      bool in_phase =
          have > 0 || (!f.points.empty() && !recovery && count_of(d.recovery, point) == 0);
      return in_phase ? f.crossings : std::vector<std::uint64_t>{};
    }
    std::vector<std::uint64_t> xs;
    for (std::uint64_t i = 1; i <= have; ++i) xs.push_back(i);
    if (f.sample && xs.size() > *f.sample) {
      std::shuffle(xs.begin(), xs.end(), rng_);
      xs.resize(*f.sample);
      std::sort(xs.begin(), xs.end());
    }
    return xs;
  }

  const MatrixSpec& spec_;
  const Coverage& coverage_;
  std::mt19937_64 rng_;
  std::uint64_t seed_;
  std::vector<MatrixCell> cells_;
};

// Every Nth cell, starting at `index`.
std::vector<MatrixCell> shard_of(std::vector<MatrixCell> cells, std::size_t index,
                                 std::size_t count) {
  if (count <= 1) return cells;
  std::vector<MatrixCell> mine;
  for (std::size_t i = 0; i < cells.size(); ++i)
    if (i % count == index) mine.push_back(std::move(cells[i]));
  return mine;
}

// --cell: only the named cells; a name that is not a cell is a usage error listing them.
std::optional<Error> keep_only(std::vector<MatrixCell>& cells,
                               const std::vector<std::string>& ids) {
  if (ids.empty()) return std::nullopt;
  for (const auto& id : ids)
    if (std::none_of(cells.begin(), cells.end(), [&](const MatrixCell& c) { return c.id == id; })) {
      std::string known;
      for (const auto& c : cells) known += (known.empty() ? "" : ", ") + c.id;
      return usage_error(
          fmt::format("--cell {}: no such cell; the spec has: {}", printable_text(id, 80), known));
    }
  std::erase_if(cells, [&](const MatrixCell& c) {
    return std::find(ids.begin(), ids.end(), c.id) == ids.end();
  });
  return std::nullopt;
}

}  // namespace

Result<MatrixPlan> expand_matrix(const MatrixSpec& spec, const ExpandOptions& o) {
  auto coverage = discover_coverage(spec, o.log);
  if (!coverage) return coverage.error();
  MatrixPlan plan;
  plan.seed = o.seed;
  plan.uncovered = uncovered_points(*coverage);
  plan.notes = coverage->notes;
  CellLister lister(spec, *coverage, o.seed);
  for (const auto& f : spec.faults)
    if (auto s = lister.add_fault(f); !s) return s.error();
  plan.cells = lister.take();
  for (const auto& sc : spec.scenarios) {
    MatrixCell cell{"scenario_" + slug(sc.name), spec.base, {}, 0, {}};
    cell.spec.steps = sc.steps;
    cell.spec.seed = o.seed;
    cell.repro = fmt::format("crashkit matrix {} --cell {} --seed {}",
                             shell_quote(spec.file.string()), cell.id, o.seed);
    plan.cells.push_back(std::move(cell));
  }
  if (auto e = keep_only(plan.cells, o.only)) return *e;
  plan.total_before_shard = plan.cells.size();
  plan.cells = shard_of(std::move(plan.cells), o.shard_index, o.shard_count);
  return plan;
}

std::vector<MatrixResult> run_matrix(const std::vector<MatrixCell>& cells,
                                     const RunMatrixOptions& o) {
  std::vector<MatrixResult> results(cells.size());
  std::atomic<std::size_t> next{0};
  std::mutex mu;
  std::size_t done = 0;
  auto worker = [&] {
    // Daemons are spawned from this thread: PDEATHSIG fires when it exits, so it lives until
    // the last of its cells is over.
    for (std::size_t i = next++; i < cells.size(); i = next++) {
      auto t0 = Clock::now();
      MatrixResult& r = results[i];
      r.cell = cells[i];
      r.repro = repro_line(cells[i]);
      auto res = run_cell(cells[i].spec);
      if (res) {
        r.result = std::move(*res);
      } else {
        r.result.outcome = Outcome::harness_error;
        r.result.reason = res.error().message;
      }
      r.elapsed = Clock::now() - t0;
      std::lock_guard lock(mu);
      ++done;
      if (o.on_done) o.on_done(done, cells.size(), r);
    }
  };
  unsigned jobs = std::max(1u, std::min<unsigned>(o.jobs, static_cast<unsigned>(cells.size())));
  std::vector<std::thread> pool;
  for (unsigned j = 0; j < jobs; ++j) pool.emplace_back(worker);
  for (auto& t : pool) t.join();
  return results;
}

}  // namespace crashkit
