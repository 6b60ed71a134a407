// Judging a run against its baseline: the seven conditions, and their terminal summary.
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>

#include "crashkit/harness/baseline.hpp"
#include "markup.hpp"

namespace crashkit {
namespace {

// "a, b, c and 4 more": the first few of a list, for a one-line detail.
std::string listed(const std::vector<std::string>& items) {
  constexpr std::size_t kShown = 4;
  std::string out;
  for (std::size_t i = 0; i < items.size() && i < kShown; ++i) out += (i ? ", " : "") + items[i];
  if (items.size() > kShown) out += fmt::format(" and {} more", items.size() - kShown);
  return out;
}

BaselineCondition from_list(std::string name, const std::vector<std::string>& broken,
                            const std::string& what, const std::string& ok) {
  if (broken.empty()) return {std::move(name), true, ok};
  return {std::move(name), false, fmt::format("{} {}: {}", broken.size(), what, listed(broken))};
}

// Recovery p50 or p99: a regression when it grew by more than `pct` percent AND by more than
// the floor, so a 1 ms daemon's jitter and a slow daemon's noise both stay quiet.
BaselineCondition recovery(std::string name, std::optional<double> before,
                           std::optional<double> now, double pct, Duration floor) {
  const double floor_ms = markup::millis(floor);
  if (!before || !now)
    return {
        std::move(name), true,
        fmt::format("not compared: no restart measured {}", before ? "now" : "in the baseline")};
  const double grew = *now - *before;
  const double pct_grew = *before > 0 ? grew / *before * 100 : (grew > 0 ? 1e9 : 0);
  const bool held = !(grew > floor_ms && pct_grew > pct);
  return {std::move(name), held,
          fmt::format("{:.2f} ms against {:.2f} ms ({:+.0f}%, {:+.2f} ms; allowed +{:g}% or "
                      "+{:g} ms, whichever is larger)",
                      *now, *before, pct_grew, grew, pct, floor_ms)};
}

BaselineCondition throughput(double before, double now, double pct) {
  const double dropped = before > 0 ? (before - now) / before * 100 : 0;
  return {"cells_per_s", dropped <= pct,
          fmt::format("{:.2f} cells/s against {:.2f} ({:+.0f}%; allowed -{:g}%)", now, before,
                      -dropped, pct)};
}

}  // namespace

bool BaselineVerdict::regressed() const {
  return std::any_of(conditions.begin(), conditions.end(), [](const auto& c) { return !c.held; });
}

BaselineVerdict compare_baseline(const Baseline& before, const Baseline& now,
                                 const BaselineThresholds& t) {
  BaselineVerdict v{.before = before, .now = now, .thresholds = t};
  std::map<std::string, const BaselineCell*> was, is;
  for (const auto& c : before.cells) was[c.id] = &c;
  for (const auto& c : now.cells) is[c.id] = &c;
  std::vector<std::string> findings, unreached, lost, errors, added;
  for (const auto& c : now.cells) {
    auto old = was.find(c.id);
    if (old == was.end()) added.push_back(c.id);
    const bool was_error = old != was.end() && old->second->outcome == Outcome::harness_error;
    if (c.outcome == Outcome::harness_error && !was_error) errors.push_back(c.id);
    if (old == was.end()) continue;
    if (old->second->outcome == Outcome::pass && is_finding(c.outcome))
      findings.push_back(fmt::format("{} ({})", c.id, to_string(c.outcome)));
    if (old->second->reached && !c.reached) unreached.push_back(c.id);
  }
  for (const auto& c : before.cells)
    if (!is.contains(c.id)) lost.push_back(c.id);
  std::set<std::string> points(now.points_reached.begin(), now.points_reached.end());
  for (const auto& p : before.points_reached)
    if (!points.contains(p)) unreached.push_back("point " + p);
  v.conditions.push_back(from_list("no_new_findings", findings, "cell(s) that passed now fail",
                                   "no cell that passed has a finding"));
  v.conditions.push_back(from_list("coverage", unreached, "fault(s) no longer reached",
                                   fmt::format("every fault and crash point reached before is "
                                               "reached ({} points)",
                                               before.points_reached.size())));
  v.conditions.push_back(
      from_list("no_lost_cells", lost, "cell(s) of the baseline missing",
                fmt::format("all {} cells of the baseline ran", before.cells.size())));
  v.conditions.push_back(recovery("recovery_p50", before.recovery_p50_ms, now.recovery_p50_ms,
                                  t.recovery_p50_pct, t.recovery_floor));
  v.conditions.push_back(recovery("recovery_p99", before.recovery_p99_ms, now.recovery_p99_ms,
                                  t.recovery_p99_pct, t.recovery_floor));
  v.conditions.push_back(throughput(before.cells_per_s, now.cells_per_s, t.cells_per_s_pct));
  v.conditions.push_back(from_list("no_new_harness_errors", errors, "new harness error(s)",
                                   "no harness error the baseline did not have"));
  if (!added.empty())
    v.notes.push_back(
        fmt::format("{} cell(s) not in the baseline, judged only for harness "
                    "errors: {}",
                    added.size(), listed(added)));
  if (before.seed != now.seed)
    v.notes.push_back(
        fmt::format("seed {} differs from the baseline's {}: sampled crossings may "
                    "differ",
                    now.seed, before.seed));
  if (before.jobs != 0 && now.jobs != 0 && before.jobs != now.jobs)
    v.notes.push_back(
        fmt::format("-j{} against the baseline's -j{}: cells/s and recovery times "
                    "are not comparable across -j",
                    now.jobs, before.jobs));
  if (before.repeat != now.repeat)
    v.notes.push_back(
        fmt::format("--repeat {} against the baseline's {}", now.repeat, before.repeat));
  return v;
}

std::string baseline_summary(const BaselineVerdict& v) {
  std::size_t failed = 0;
  for (const auto& c : v.conditions) failed += !c.held;
  std::string out = fmt::format(
      "baseline {}: {}\n", v.file.string(),
      failed ? fmt::format("REGRESSION, {} of {} conditions failed", failed, v.conditions.size())
             : fmt::format("all {} conditions held", v.conditions.size()));
  for (const auto& c : v.conditions)
    out += fmt::format("  {:<6} {:<22} {}\n", c.held ? "held" : "FAILED", c.name, c.detail);
  for (const auto& n : v.notes) out += fmt::format("  note: {}\n", n);
  return out;
}

}  // namespace crashkit
