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
  opt("--ready-timeout", format_duration(s.ready_timeout));
  opt("--stop-timeout", format_duration(s.stop_timeout));
  if (s.notify_access == NotifyAccess::all) opt("--notify-access", "all");
  if (s.user) opt("--user", *s.user);
  if (s.prepare) opt("--prepare", *s.prepare);
  if (s.workload) opt("--workload", *s.workload);
  for (const auto& c : s.check_offline) opt("--check-offline", c);
  for (const auto& c : s.check_online) opt("--check", c);
  std::string prefix;
  for (const auto& e : s.extra_env) prefix += shell_quote(e) + " ";
  cmd += " --";
  for (const auto& a : s.target) cmd += " " + shell_quote(a);
  return prefix.empty() ? cmd : "env " + prefix + cmd;
}

Result<MatrixPlan> expand_matrix(const MatrixSpec& spec, const ExpandOptions& o) {
  MatrixPlan plan;
  plan.seed = o.seed;
  bool needs_discovery = std::any_of(spec.faults.begin(), spec.faults.end(), [](const auto& f) {
    return f.kind == MatrixFault::Kind::crash_points;
  });
  Discovery disc;
  std::vector<PointName> compiled;
  if (needs_discovery) {
    CellSpec ds = spec.base;
    ds.fault = Fault{};
    auto d = discover(ds, o.log);
    if (!d) return d.error();
    disc = std::move(*d);
    auto exe = resolve_executable(spec.base.target[0]);
    if (exe) {
      auto pts = read_compiled_points(*exe);
      if (pts) compiled = *pts;
    }
  }
  std::mt19937_64 rng(o.seed);
  std::set<std::string> crossed;
  for (const auto& [n, c] : disc.run)
    if (c > 0) crossed.insert(n);
  for (const auto& [n, c] : disc.recovery)
    if (c > 0) crossed.insert(n);
  for (const auto& p : compiled)
    if (!crossed.count(p.name)) plan.uncovered.push_back(p.name);

  auto add = [&](std::string id, CellSpec s, std::string point = {}, std::uint64_t crossing = 0) {
    plan.cells.push_back({std::move(id), std::move(s), std::move(point), crossing});
  };
  for (const auto& f : spec.faults) {
    CellSpec s = spec.base;
    if (f.kind == MatrixFault::Kind::sigterm) {
      s.fault = *Fault::parse("sigterm");
      add("sigterm", s);
    } else if (f.kind == MatrixFault::Kind::sigkill) {
      if (f.after.empty()) {
        s.fault = *Fault::parse("sigkill");
        add("sigkill", s);
      }
      for (auto d : f.after) {
        s.fault = Fault{Fault::Kind::sigkill_after, d, {}, false};
        add("sigkill_after_" + slug(format_duration(d)), s);
      }
    } else {
      std::vector<std::string> points = f.points;
      if (points.empty())
        for (const auto& n : crossed) points.push_back(n);
      for (const auto& p : f.points) {
        bool known = compiled.empty() || std::any_of(compiled.begin(), compiled.end(),
                                                     [&](auto& c) { return c.name == p; });
        if (!known)
          return usage_error(
              fmt::format("{}: crash_points names unknown point '{}'; "
                          "`crashkit points {}` lists them",
                          spec.file.string(), p, spec.base.target[0]));
      }
      for (const auto& p : points) {
        for (bool recovery : {false, true}) {
          if (recovery && f.phase == MatrixFault::Phase::run) continue;
          if (!recovery && f.phase == MatrixFault::Phase::recovery) continue;
          const auto& counts = recovery ? disc.recovery : disc.run;
          auto it = counts.find(p);
          std::uint64_t have = it == counts.end() ? 0 : it->second;
          std::vector<std::uint64_t> xs;
          if (!f.crossings.empty()) {
            // Explicit crossings run even beyond the discovered count (then: fault_not_reached),
            // but only in the phase where the point is crossed at all.
            if (have > 0 || (f.points.size() && !recovery && disc.recovery[p] == 0))
              xs = f.crossings;
          } else {
            for (std::uint64_t i = 1; i <= have; ++i) xs.push_back(i);
            if (f.sample && xs.size() > *f.sample) {
              std::shuffle(xs.begin(), xs.end(), rng);
              xs.resize(*f.sample);
              std::sort(xs.begin(), xs.end());
            }
          }
          for (auto x : xs) {
            auto fault = Fault::crash(fmt::format("{}@{}={}", p, x, f.action), recovery);
            if (!fault) return fault.error();
            s.fault = *fault;
            add(fmt::format("{}{}_at_{}_{}", recovery ? "recovery_" : "", slug(p), x,
                            action_slug(f.action)),
                s, p, x);
          }
        }
      }
    }
  }
  plan.total_before_shard = plan.cells.size();
  if (o.shard_count > 1) {
    std::vector<MatrixCell> mine;
    for (std::size_t i = 0; i < plan.cells.size(); ++i)
      if (i % o.shard_count == o.shard_index) mine.push_back(std::move(plan.cells[i]));
    plan.cells = std::move(mine);
  }
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
      r.repro = repro_command(cells[i].spec);
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
