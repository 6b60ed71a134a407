// The network-fault grammar (docs/network.md): LINK:TOXIC and partitions.
#include "crashkit/harness/net_fault.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

#include "crashkit/crash_protocol.hpp"

namespace crashkit {
namespace {

using Kind = net::Toxic::Kind;

std::string_view trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

Error bad(std::string_view text, std::string_view why) {
  return usage_error(fmt::format(
      "--net '{}': {}; e.g. client:latency(50ms), peers:reset_peer(100B), peer.1:blackhole "
      "(docs/network.md)",
      printable_text(text, 80), why));
}

// A whole number with an optional B/KB/MB suffix (1 KB = 1024 bytes), checked for overflow.
std::optional<std::uint64_t> bytes(std::string_view s) {
  std::uint64_t mult = 1;
  for (auto [suffix, m] : {std::pair{std::string_view("MB"), std::uint64_t{1} << 20},
                           std::pair{std::string_view("KB"), std::uint64_t{1} << 10},
                           std::pair{std::string_view("B"), std::uint64_t{1}}})
    if (s.ends_with(suffix)) {
      s.remove_suffix(suffix.size());
      mult = m;
      break;
    }
  std::uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc{} || end != s.data() + s.size() || v > UINT64_MAX / mult)
    return std::nullopt;
  return v * mult;
}

std::optional<std::chrono::milliseconds> millis(std::string_view s) {
  auto d = parse_duration("net", s);
  if (!d || *d < Duration::zero() || *d > std::chrono::hours(24)) return std::nullopt;
  return std::chrono::duration_cast<std::chrono::milliseconds>(*d);
}

}  // namespace

Result<NetToxic> parse_net_toxic(std::string_view text) {
  const auto colon = text.find(':');
  if (colon == std::string_view::npos || colon == 0) return bad(text, "name the link (LINK:)");
  NetToxic out;
  out.link = std::string(text.substr(0, colon));
  if (out.link.find_first_of(" ,()") != std::string::npos) return bad(text, "a bad link name");
  std::string_view t = text.substr(colon + 1), args;
  if (auto open = t.find('('); open != std::string_view::npos) {
    if (!t.ends_with(")")) return bad(text, "a ')' is missing");
    args = t.substr(open + 1, t.size() - open - 2);
    t = t.substr(0, open);
  }
  std::vector<std::string_view> a;
  for (std::size_t at = 0; !args.empty();) {
    auto comma = args.find(',', at);
    a.push_back(trim(args.substr(at, comma == std::string_view::npos ? args.npos : comma - at)));
    if (comma == std::string_view::npos) break;
    at = comma + 1;
  }
  const std::pair<std::string_view, Kind> names[] = {
      {"latency", Kind::latency},      {"bandwidth", Kind::bandwidth},
      {"timeout", Kind::timeout},      {"reset_peer", Kind::reset_peer},
      {"blackhole", Kind::blackhole},  {"slow_close", Kind::slow_close},
      {"limit_data", Kind::limit_data}};
  auto it = std::find_if(std::begin(names), std::end(names), [&](auto& n) { return n.first == t; });
  if (it == std::end(names))
    return bad(text, fmt::format("unknown toxic '{}' (latency, bandwidth, timeout, reset_peer, "
                                 "blackhole, slow_close, limit_data)",
                                 printable_text(t, 40)));
  net::Toxic& x = out.toxic;
  x.kind = it->second;
  x.text = std::string(text);
  const std::size_t most = x.kind == Kind::latency ? 2 : x.kind == Kind::blackhole ? 0 : 1;
  const bool needs = x.kind != Kind::timeout && x.kind != Kind::reset_peer && most > 0;
  if (a.size() > most || (needs && a.empty()))
    return bad(text, fmt::format("{} takes {}", t,
                                 most == 0   ? "no arguments"
                                 : most == 2 ? "(DURATION[, JITTER])"
                                 : x.kind == Kind::bandwidth || x.kind == Kind::limit_data
                                     ? "one size (KB/s for bandwidth, bytes for limit_data)"
                                     : "one duration"));
  for (std::size_t i = 0; i < a.size(); ++i) {
    const bool size_arg = x.kind == Kind::bandwidth || x.kind == Kind::limit_data ||
                          (x.kind == Kind::reset_peer && a[i].ends_with("B"));
    if (size_arg) {
      auto v = bytes(a[i]);
      if (!v || (x.kind == Kind::bandwidth && (*v == 0 || *v > (1u << 30))))
        return bad(text, fmt::format("'{}' is not a size", printable_text(a[i], 40)));
      x.amount = *v;
      x.by_bytes = x.kind == Kind::reset_peer;
    } else {
      auto ms = millis(a[i]);
      if (!ms)
        return bad(text,
                   fmt::format("'{}' is not a duration of 0 to 24h", printable_text(a[i], 40)));
      (i == 0 ? x.time : x.jitter) = *ms;
    }
  }
  return out;
}

Result<std::vector<std::vector<int>>> parse_partition(std::string_view text, int replicas) {
  std::vector<std::vector<int>> groups;
  std::vector<bool> seen(static_cast<std::size_t>(std::max(replicas, 0)), false);
  auto fail = [&](std::string_view why) {
    return usage_error(
        fmt::format("partition '{}': {}; e.g. [[0], [1, 2]]", printable_text(text, 80), why));
  };
  std::string_view s = trim(text);
  if (!s.starts_with("[") || !s.ends_with("]")) return fail("a list of groups");
  s = trim(s.substr(1, s.size() - 2));
  while (!s.empty()) {
    if (!s.starts_with("[")) return fail("each group is a list [I, ...]");
    auto close = s.find(']');
    if (close == std::string_view::npos) return fail("a ']' is missing");
    std::string_view g = s.substr(1, close - 1);
    std::vector<int> group;
    while (!(g = trim(g)).empty()) {
      int i = -1;
      auto [end, ec] = std::from_chars(g.data(), g.data() + g.size(), i);
      if (ec != std::errc{} || i < 0 || i >= replicas)
        return fail(fmt::format("there are replicas 0 to {}", replicas - 1));
      if (seen[static_cast<std::size_t>(i)]) return fail(fmt::format("replica {} twice", i));
      seen[static_cast<std::size_t>(i)] = true;
      group.push_back(i);
      g = trim(g.substr(static_cast<std::size_t>(end - g.data())));
      if (g.starts_with(",")) g.remove_prefix(1);
    }
    if (group.empty()) return fail("an empty group");
    groups.push_back(std::move(group));
    s = trim(s.substr(close + 1));
    if (s.starts_with(",")) s = trim(s.substr(1));
  }
  if (groups.size() < 2) return fail("at least two groups");
  return groups;
}

}  // namespace crashkit
