// The one-line summaries reports quote from a process's captured output (output_capture.hpp).
#include <algorithm>
#include <cctype>
#include <string>
#include <string_view>

#include "crashkit/harness/output_capture.hpp"

namespace crashkit {

namespace {

// The first line of `text` that reads as an error, trimmed and shortened; empty if none.
std::string first_error_line(const std::string& text, std::size_t max) {
  static constexpr std::string_view kWords[] = {"error",  "fatal",  "invalid", "cannot", "can't",
                                                "failed", "denied", "panic",   "refuse", "abort"};
  for (std::size_t at = 0; at < text.size();) {
    std::size_t end = text.find('\n', at);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(at, end - at);
    at = end + 1;
    std::string lower;
    for (char c : line) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (std::any_of(std::begin(kWords), std::end(kWords),
                    [&](std::string_view w) { return lower.find(w) != std::string::npos; }))
      return last_line(line, max);
  }
  return {};
}

}  // namespace

std::string explaining_lines(const std::string& head, const std::string& tail, std::size_t max) {
  const std::string last = last_line(tail, max);
  std::string first = first_error_line(head, max);
  if (first.empty()) first = first_error_line(tail, max);
  return first.empty() || first == last ? last : first + " ... " + last;
}

std::string last_line(const std::string& text, std::size_t max) {
  std::size_t end = text.find_last_not_of(" \t\r\n");
  if (end == std::string::npos) return {};
  std::size_t start = text.rfind('\n', end);
  start = start == std::string::npos ? 0 : start + 1;
  std::string line = text.substr(start, end - start + 1);
  if (line.size() > max) line = line.substr(0, max) + "...";
  return line;
}

}  // namespace crashkit
