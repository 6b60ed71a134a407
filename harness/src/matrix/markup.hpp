// Internal to the report writers: escaping for XML/HTML text and attributes, seconds and
// milliseconds as doubles.
#pragma once

#include <string>
#include <string_view>

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

}  // namespace crashkit::markup
