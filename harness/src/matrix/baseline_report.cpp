#include "matrix/baseline_report.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "markup.hpp"

namespace crashkit::detail {
namespace {

using markup::escape;

std::size_t failed(const BaselineVerdict& v) {
  return static_cast<std::size_t>(
      std::count_if(v.conditions.begin(), v.conditions.end(), [](auto& c) { return !c.held; }));
}

nlohmann::json measured(const Baseline& b) {
  nlohmann::json j{{"cells", b.cells.size()},
                   {"cells_per_s", b.cells_per_s},
                   {"repeat", b.repeat},
                   {"seed", b.seed}};
  if (b.recovery_p50_ms)
    j["recovery_ms"] = {{"p50", *b.recovery_p50_ms}, {"p99", *b.recovery_p99_ms}};
  return j;
}

std::vector<double> sorted_recoveries(const Baseline& b) {
  std::vector<double> v;
  for (const auto& c : b.cells)
    if (c.recovery_ms) v.push_back(*c.recovery_ms);
  std::sort(v.begin(), v.end());
  return v;
}

// x: the cell's rank as a fraction of the cells (0..1); y: its recovery time.
std::string curve(const std::vector<double>& ms, const markup::MsPlot& plot, const char* cls,
                  int left, int w) {
  if (ms.empty()) return "";
  std::string points;
  for (std::size_t i = 0; i < ms.size(); ++i) {
    double x = left + (ms.size() == 1 ? 0.5 : static_cast<double>(i) / (ms.size() - 1)) * w;
    double y = plot.y(ms[i]);
    points += fmt::format("{:.1f},{:.1f} ", x, y);
  }
  return fmt::format("<polyline class=\"{}\" fill=\"none\" points=\"{}\"/>\n", cls, points);
}

std::string recovery_against_baseline(const BaselineVerdict& v) {
  auto before = sorted_recoveries(v.before), now = sorted_recoveries(v.now);
  if (before.empty() && now.empty()) return "<p>No cell restarted the daemon.</p>\n";
  double max = 1e-3;
  for (const auto* s : {&before, &now})
    if (!s->empty()) max = std::max(max, s->back());
  const int left = 60, w = 520, h = 220;
  const markup::MsPlot plot{max, h};
  std::string svg =
      plot.open(left + w + 260, h + 40, "recovery time against the baseline", left, left + w);
  svg += curve(before, plot, "before", left, w) + curve(now, plot, "now", left, w);
  int legend_y = 24;
  for (auto [label, b, cls] :
       {std::tuple{"baseline", &v.before, "before"}, std::tuple{"this run", &v.now, "now"}}) {
    svg += fmt::format(
        "<line x1=\"{}\" x2=\"{}\" y1=\"{}\" y2=\"{}\" class=\"{}\"/><text x=\"{}\" y=\"{}\" "
        "class=\"axis\">{}{}</text>\n",
        left + w + 10, left + w + 30, legend_y, legend_y, cls, left + w + 34, legend_y + 4, label,
        b->recovery_p50_ms
            ? fmt::format(": p50 {:.1f}, p99 {:.1f}", *b->recovery_p50_ms, *b->recovery_p99_ms)
            : "");
    legend_y += 18;
  }
  svg += fmt::format(
      "<text x=\"{}\" y=\"{}\" class=\"axis\">cells that restarted, fastest to slowest →</text>\n",
      left, h + 30);
  return svg + "</svg>\n";
}

}  // namespace

std::string baseline_junit(const BaselineVerdict& v) {
  std::string out = fmt::format(
      "  <testsuite name=\"crashkit.baseline\" tests=\"{}\" failures=\"{}\" errors=\"0\">\n",
      v.conditions.size(), failed(v));
  for (const auto& c : v.conditions) {
    out += fmt::format("    <testcase classname=\"crashkit.baseline\" name=\"{}\">", c.name);
    if (c.held)
      out += fmt::format("<system-out>{}</system-out>", escape(c.detail));
    else
      out += fmt::format("<failure type=\"regression\" message=\"{}\">{}</failure>",
                         escape(c.detail), escape(v.file.string() + ": " + c.detail));
    out += "</testcase>\n";
  }
  return out + "  </testsuite>\n";
}

nlohmann::json baseline_report_json(const BaselineVerdict& v) {
  nlohmann::json conditions = nlohmann::json::array();
  for (const auto& c : v.conditions)
    conditions.push_back({{"name", c.name}, {"held", c.held}, {"detail", c.detail}});
  return {{"file", v.file.string()}, {"regressed", v.regressed()},     {"conditions", conditions},
          {"notes", v.notes},        {"baseline", measured(v.before)}, {"now", measured(v.now)}};
}

std::string baseline_html(const BaselineVerdict& v) {
  std::string h = fmt::format(
      "<h2>Against the baseline</h2>\n<p class=\"meta\"><code style=\"display:inline\">{}</code>: "
      "{}</p>\n<table><tr><th>condition</th><th></th><th>detail</th></tr>\n",
      escape(v.file.string()),
      v.regressed()
          ? fmt::format("<b style=\"color:#c62828\">regression</b>, {} of {} failed", failed(v),
                        v.conditions.size())
          : fmt::format("<span class=\"ok\">all {} conditions held</span>", v.conditions.size()));
  for (const auto& c : v.conditions)
    h += fmt::format(
        "<tr><td>{}</td><td style=\"color:{};font-weight:600\">{}</td><td>{}</td></tr>\n",
        escape(c.name), c.held ? "#2e7d32" : "#c62828", c.held ? "held" : "failed",
        escape(c.detail));
  h += "</table>\n";
  for (const auto& n : v.notes) h += "<p class=\"meta\">" + escape(n) + "</p>\n";
  return h + "<h3>Recovery time against the baseline</h3>\n<div class=\"scroll\">" +
         recovery_against_baseline(v) + "</div>\n";
}

}  // namespace crashkit::detail
