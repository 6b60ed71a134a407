// Internal to the report writers: escaping for XML/HTML text and attributes, seconds and
// milliseconds as doubles, medians, and the millisecond axis of the HTML plots.
#pragma once

#include <fmt/format.h>

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include "crashkit/harness/duration.hpp"

namespace crashkit::markup {

// Escapes the five XML specials; control characters other than \n and \t become '?'
// (XML 1.0 cannot carry them, and a daemon's reason text may contain anything).
inline std::string escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        out += static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t' ? '?' : c;
    }
  }
  return out;
}

inline double secs(Duration d) {
  return std::chrono::duration<double>(d).count();
}

inline double millis(Duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

// The middle sample (the upper one of an even count); 0 for none.
inline double median(std::vector<double> v) {
  if (v.empty()) return 0;
  auto mid = v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2);
  std::nth_element(v.begin(), mid, v.end());
  return *mid;
}

// A plot of milliseconds (the HTML report's recovery plots): values from 0 at the bottom to
// `max` at the top of a plot area `h` pixels high, 10 pixels below the top of the SVG.
struct MsPlot {
  double max;  // callers keep it above 0 (1e-3 at least)
  int h;
  double y(double ms) const { return 10 + h - ms / max * h; }
  // The opening <svg> tag, `width` x `height`, and three ticks across x = left..right (0, half
  // of max, max), each labelled in ms at the left.
  std::string open(int width, int height, std::string_view label, int left, int right) const {
    std::string svg = fmt::format(
        "<svg class=\"plot\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" role=\"img\" "
        "aria-label=\"{}\">\n",
        width, height, width, height, escape(label));
    for (double tick : {0.0, max / 2, max})
      svg += fmt::format(
          "<line x1=\"{}\" x2=\"{}\" y1=\"{:.1f}\" y2=\"{:.1f}\" class=\"tick\"/>"
          "<text x=\"{}\" y=\"{:.1f}\" class=\"axis\" text-anchor=\"end\">{:.1f} ms</text>\n",
          left, right, y(tick), y(tick), left - 6, y(tick) + 4, tick);
    return svg;
  }
};

}  // namespace crashkit::markup
