#include "crashkit/harness/notify_message.hpp"

#include <fmt/format.h>

#include "crashkit/crash_protocol.hpp"

namespace crashkit {

std::optional<std::string_view> NotifyMessage::get(std::string_view key) const {
  for (auto it = fields.rbegin(); it != fields.rend(); ++it)
    if (it->first == key) return std::string_view(it->second);
  return std::nullopt;
}

bool NotifyMessage::has(std::string_view key, std::string_view value) const {
  auto v = get(key);
  return v && *v == value;
}

Result<NotifyMessage> parse_notify_datagram(std::string_view d) {
  if (d.size() > kNotifyDatagramMax)
    return usage_error(
        fmt::format("datagram of {} bytes exceeds {}", d.size(), kNotifyDatagramMax));
  if (d.find('\0') != std::string_view::npos) return usage_error("datagram has an embedded NUL");
  NotifyMessage m;
  while (!d.empty()) {
    auto nl = d.find('\n');
    std::string_view line = d.substr(0, nl);
    d = nl == std::string_view::npos ? std::string_view{} : d.substr(nl + 1);
    if (line.empty()) continue;
    auto eq = line.find('=');
    // At most 40 bytes of a sender's text, escaped: bounded and one line whatever it sent.
    if (eq == std::string_view::npos || eq == 0)
      return usage_error(fmt::format("line without KEY=: '{}'", printable_text(line, 40)));
    std::string_view key = line.substr(0, eq);
    for (char c : key) {
      bool good = (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
      if (!good) return usage_error(fmt::format("bad key '{}'", printable_text(key, 40)));
    }
    m.fields.emplace_back(std::string(key), std::string(line.substr(eq + 1)));
  }
  if (m.fields.empty()) return usage_error("empty datagram");
  return m;
}

}  // namespace crashkit
