// The self-contained HTML report: inline CSS and SVG only (no script, no fonts, no network),
// so it can be archived as a CI artifact and opened anywhere.
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>

#include "crashkit/harness/report.hpp"
#include "markup.hpp"
#include "matrix/baseline_report.hpp"

namespace crashkit {
namespace {

using markup::escape;
using markup::secs;

constexpr int kSignalW =
    200;  // a whole-run cell's box, wide enough for its id (powerloss_torn_seed11)

const char* colour(Outcome o) {
  switch (o) {
    case Outcome::pass:
      return "#2e7d32";
    case Outcome::violation:
      return "#c62828";
    case Outcome::not_ready:
      return "#ef6c00";
    case Outcome::unexpected_exit:
      return "#6a1b9a";
    case Outcome::fault_not_reached:
      return "#9e9e9e";
    case Outcome::harness_error:
      return "#37474f";
  }
  return "#000000";
}

std::string tooltip(const MatrixResult& r) {
  return escape(fmt::format("{}: {}\n{}", r.cell.id, to_string(r.result.outcome), r.result.reason));
}

std::optional<double> recovery_ms(const MatrixResult& r) {
  auto rec = r.result.last_recovery();
  return rec ? std::optional(markup::millis(*rec)) : std::nullopt;
}

constexpr int kBox = 18, kGap = 2, kLabelW = 330;  // the grid's boxes and its label column

// The cells of the grid: crash cells by row and crossing, and the signal cells.
struct Grid {
  struct Row {
    std::string label;
    std::map<std::uint64_t, const MatrixResult*> at;
  };
  std::map<std::string, Row> rows;  // one per (point, phase, action)
  std::set<std::uint64_t> crossings;
  std::vector<const MatrixResult*> signals;
};

Grid grid_of(const std::vector<MatrixResult>& results) {
  Grid g;
  auto& [rows, crossings, signals] = g;
  for (const auto& r : results) {
    if (r.cell.point.empty()) {
      signals.push_back(&r);
      continue;
    }
    std::string plan = r.cell.spec.fault.plan;
    std::string action = plan.substr(plan.find('=') + 1);
    bool recovery = r.cell.spec.fault.on_restart;
    std::string label = fmt::format("{}{}{}", recovery ? "recovery: " : "", r.cell.point,
                                    action == "kill" ? "" : " · " + action);
    auto& row = rows[fmt::format("{}|{}|{}", r.cell.point, recovery, action)];
    row.label = label;
    row.at[r.cell.crossing] = &r;
    crossings.insert(r.cell.crossing);
  }
  return g;
}

// The strip of signal cells (no point) above the grid, at height `y`.
std::string signal_strip(const std::vector<const MatrixResult*>& signals, int y) {
  const int box = kBox, gap = kGap, label_w = kLabelW;
  std::string svg =
      fmt::format("<text x=\"0\" y=\"{}\" class=\"lbl\">signals, power loss</text>\n", y + 13);
  int x = label_w;
  for (const auto* r : signals) {
    svg += fmt::format(
        "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"3\" "
        "fill=\"{}\"><title>{}</title>"
        "</rect><text x=\"{}\" y=\"{}\" class=\"sig\">{}</text>\n",
        x, y, kSignalW, box, colour(r->result.outcome), tooltip(*r), x + 5, y + 13,
        escape(r->cell.id));
    x += kSignalW + gap;
  }
  return svg;
}

// Rows: one per (phase, point, action); columns: every crossing any crash cell uses.
// Signal cells (no point) get a strip of their own above the grid.
std::string cell_grid(const std::vector<MatrixResult>& results) {
  const auto [rows, crossings, signals] = grid_of(results);
  const int box = kBox, gap = kGap, label_w = kLabelW, top = 36;
  std::vector<std::uint64_t> cols(crossings.begin(), crossings.end());
  int width = label_w +
              std::max(static_cast<int>(cols.size()) * (box + gap),
                       static_cast<int>(signals.size()) * (kSignalW + gap)) +
              20;
  int signal_h = signals.empty() ? 0 : box + 28;
  int height = top + signal_h + static_cast<int>(rows.size()) * (box + gap) + 10;
  std::string svg = fmt::format(
      "<svg class=\"grid\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" role=\"img\" "
      "aria-label=\"cells by point and crossing\">\n",
      width, height, width, height);
  int y = 4;
  if (!signals.empty()) {
    svg += signal_strip(signals, y);
    y += signal_h;
  }
  svg += fmt::format("<text x=\"{}\" y=\"{}\" class=\"axis\">crossing →</text>\n", label_w, y + 8);
  for (std::size_t c = 0; c < cols.size(); ++c)
    svg += fmt::format("<text x=\"{}\" y=\"{}\" class=\"axis\" text-anchor=\"middle\">{}</text>\n",
                       label_w + static_cast<int>(c) * (box + gap) + box / 2, y + 26, cols[c]);
  y += top - 4;
  for (const auto& [key, row] : rows) {
    svg +=
        fmt::format("<text x=\"0\" y=\"{}\" class=\"lbl\">{}</text>\n", y + 13, escape(row.label));
    for (std::size_t c = 0; c < cols.size(); ++c) {
      auto it = row.at.find(cols[c]);
      if (it == row.at.end()) continue;
      svg += fmt::format(
          "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"3\" fill=\"{}\"><title>{}"
          "</title></rect>\n",
          label_w + static_cast<int>(c) * (box + gap), y, box, box,
          colour(it->second->result.outcome), tooltip(*it->second));
    }
    y += box + gap;
  }
  return svg + "</svg>\n";
}

// One bar per cell that restarted, in matrix order, with the median as a dashed line.
std::string recovery_plot(const std::vector<MatrixResult>& results) {
  std::vector<std::pair<const MatrixResult*, double>> bars;
  for (const auto& r : results)
    if (auto ms = recovery_ms(r)) bars.emplace_back(&r, *ms);
  if (bars.empty()) return "<p>No cell restarted the daemon.</p>\n";
  std::vector<double> all;
  for (auto& b : bars) all.push_back(b.second);
  const double median = markup::median(all);
  const int left = 60, plot_h = 220, bar_w = 8, gap = 2;
  int width = left + static_cast<int>(bars.size()) * (bar_w + gap) + 20;
  const markup::MsPlot plot{std::max(*std::max_element(all.begin(), all.end()), 1e-3), plot_h};
  std::string svg = plot.open(width, plot_h + 40, "recovery time per cell", left, width - 10);
  for (std::size_t i = 0; i < bars.size(); ++i) {
    auto [r, ms] = bars[i];
    double y = plot.y(ms);
    svg += fmt::format(
        "<rect x=\"{}\" y=\"{:.1f}\" width=\"{}\" height=\"{:.1f}\" fill=\"{}\"><title>{}: {:.2f} "
        "ms</title></rect>\n",
        left + static_cast<int>(i) * (bar_w + gap), y, bar_w, 10 + plot_h - y,
        colour(r->result.outcome), escape(r->cell.id), ms);
  }
  svg += fmt::format(
      "<line x1=\"{}\" x2=\"{}\" y1=\"{:.1f}\" y2=\"{:.1f}\" class=\"median\"/>"
      "<text x=\"{}\" y=\"{:.1f}\" class=\"axis\" text-anchor=\"end\">median {:.2f} ms</text>\n",
      left, width - 10, plot.y(median), plot.y(median), width - 10, plot.y(median) - 4, median);
  svg += fmt::format("<text x=\"{}\" y=\"{}\" class=\"axis\">cells, in matrix order →</text>\n",
                     left, plot_h + 30);
  return svg + "</svg>\n";
}

constexpr const char* kStyle = R"(
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px; color: #212121; background: #fff; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 8px; }
.meta { color: #555; margin: 0 0 12px; }
.badge { display: inline-block; padding: 3px 10px; margin: 0 6px 6px 0; border-radius: 12px;
         color: #fff; font-weight: 600; }
table { border-collapse: collapse; width: 100%; } td, th { border-bottom: 1px solid #ddd;
        padding: 5px 8px; text-align: left; vertical-align: top; }
code { font: 12px/1.4 ui-monospace, monospace; background: #f4f4f4; padding: 2px 4px;
       word-break: break-all; display: block; }
.ok { color: #2e7d32; font-weight: 600; }
.lbl { font: 12px ui-monospace, monospace; fill: #212121; }
.axis { font: 11px system-ui, sans-serif; fill: #555; }
.sig { font: 11px ui-monospace, monospace; fill: #fff; }
.tick { stroke: #ddd; } .median { stroke: #212121; stroke-dasharray: 4 3; }
.legend span { display: inline-block; width: 12px; height: 12px; margin: 0 4px 0 12px;
               vertical-align: -1px; border-radius: 2px; }
.scroll { overflow-x: auto; }
.before { stroke: #9e9e9e; stroke-width: 2; stroke-dasharray: 5 3; }
.now { stroke: #1565c0; stroke-width: 2; }
)";

std::string findings_table(const std::vector<MatrixResult>& results) {
  std::string h = "<table><tr><th>cell</th><th>outcome</th><th>reason and repro</th></tr>\n";
  for (const auto& r : results) {
    if (!needs_attention(r.result.outcome)) continue;
    h += fmt::format(
        "<tr><td>{}</td><td style=\"color:{};font-weight:600\">{}</td><td>{}<code>{}</code>{}"
        "</td></tr>\n",
        escape(r.cell.id), colour(r.result.outcome), to_string(r.result.outcome),
        escape(r.result.reason), escape(r.repro),
        r.result.kept ? fmt::format("artifacts: <code>{}</code>", escape(r.result.run_dir.string()))
                      : "");
  }
  return h + "</table>\n";
}

// A group cell's recovery per replica: for each cycle (a scenario: each step) that restarted
// replicas, "cycle C: rI N ms, ..." (a cell's own recovery is its slowest replica's).
std::string replica_recoveries(const MatrixResult& r) {
  std::string out;
  for (const auto& c : r.result.cycles) {
    if (c.recoveries.empty()) continue;
    std::string each;
    for (std::size_t i = 0; i < c.recoveries.size() && i < c.hit.size(); ++i)
      each += fmt::format("{}r{} {:.2f}", each.empty() ? "" : ", ", c.hit[i],
                          std::chrono::duration<double, std::milli>(c.recoveries[i]).count());
    out += fmt::format("{}{} {}: {}", out.empty() ? "" : "<br>",
                       r.cell.spec.steps.empty() ? "cycle" : "step", c.cycle, each);
  }
  return out;
}

std::string all_cells_table(const std::vector<MatrixResult>& results) {
  std::string h =
      "<h2>All cells</h2>\n<details><summary>" + std::to_string(results.size()) +
      " cells</summary><table><tr><th>cell</th><th>fault</th><th>outcome</th><th>seconds</th>"
      "<th>recovery ms</th><th>per replica (ms)</th></tr>\n";
  for (const auto& r : results) {
    auto ms = recovery_ms(r);
    h += fmt::format(
        "<tr><td>{}</td><td>{}</td><td style=\"color:{}\">{}</td><td>{:.2f}</td><td>{}</td>"
        "<td>{}</td></tr>\n",
        escape(r.cell.id), escape(fault_label(r.cell.spec)), colour(r.result.outcome),
        to_string(r.result.outcome), secs(r.elapsed), ms ? fmt::format("{:.2f}", *ms) : "",
        replica_recoveries(r));
  }
  return h + "</table></details>\n";
}

}  // namespace

std::string matrix_html(const std::vector<MatrixResult>& results, const MatrixPlan& plan,
                        Duration wall, const BaselineVerdict* baseline) {
  std::map<Outcome, std::size_t> counts;
  std::size_t findings = 0;
  for (const auto& r : results) {
    ++counts[r.result.outcome];
    findings += needs_attention(r.result.outcome);
  }
  std::string h = fmt::format(
      "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
      "<title>crashkit matrix: {} cells, {} findings</title>\n<style>{}</style></head><body>\n"
      "<h1>crashkit crash matrix</h1>\n"
      "<p class=\"meta\">{} cells{} in {:.1f} s ({:.2f} cells/s) · seed {}{}</p>\n<div>",
      results.size(), findings, kStyle, results.size(),
      plan.repeat > 1 ? fmt::format(" × {} repeats", plan.repeat) : "", secs(wall),
      secs(wall) > 0 ? static_cast<double>(results.size() * plan.repeat) / secs(wall) : 0.0,
      plan.seed,
      plan.total_before_shard != results.size()
          ? fmt::format(" · this shard of {} cells", plan.total_before_shard)
          : "");
  for (auto o : kOutcomes)
    if (counts[o] > 0)
      h += fmt::format("<span class=\"badge\" style=\"background:{}\">{} {}</span>", colour(o),
                       to_string(o), counts[o]);
  if (baseline)
    h += fmt::format("<span class=\"badge\" style=\"background:{}\">baseline: {}</span>",
                     baseline->regressed() ? "#c62828" : "#2e7d32",
                     baseline->regressed() ? "regression" : "held");
  h += "</div>\n";
  h += "<h2>Cells by point and crossing</h2>\n<p class=\"legend\">";
  for (auto o : kOutcomes)
    h += fmt::format("<span style=\"background:{}\"></span>{}", colour(o), to_string(o));
  h += "</p>\n<div class=\"scroll\">" + cell_grid(results) + "</div>\n";
  h += "<h2>Recovery time (restart → READY)</h2>\n<div class=\"scroll\">" + recovery_plot(results) +
       "</div>\n";
  if (baseline) h += detail::baseline_html(*baseline);
  h += fmt::format("<h2>Findings ({})</h2>\n", findings);
  if (findings == 0) {
    h += "<p class=\"ok\">No findings: every checker held in every cell.</p>\n";
  } else {
    h += findings_table(results);
  }
  if (!plan.uncovered.empty()) {
    h += "<h2>Coverage gaps</h2>\n<p>The workload never crossed:";
    for (const auto& p : plan.uncovered)
      h += " <code style=\"display:inline\">" + escape(p) + "</code>";
    h += "</p>\n";
  }
  return h + all_cells_table(results) + "</body></html>\n";
}

}  // namespace crashkit
