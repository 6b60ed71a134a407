// Fuzzes the network-fault grammar (docs/network.md): LINK:TOXIC (--net, a matrix's net:) and
// partitions ([[0], [1, 2]], a scenario's net step): parse_net_toxic, parse_partition.
//
// Properties: a rejection is a usage error on one line, starting with what it rejects; an
// accepted toxic keeps the text as written, names a link, and has sizes and times in range; an
// accepted partition has two or more non-empty groups of distinct replicas in range, and
// printed back it parses to the same groups.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "crashkit/harness/net_fault.hpp"
#include "property.hpp"

namespace {

using crashkit::fuzz::broken;

void check_rejection(const crashkit::Error& e, std::string_view parser, std::string_view start) {
  if (e.kind != crashkit::ErrorKind::usage) broken(std::string(parser) + ": not a usage error");
  crashkit::fuzz::require_one_line_message(e.message, parser);
  if (!e.message.starts_with(start))
    broken(fmt::format("{}: rejection does not start with {}: {}", parser, start, e.message));
}

void check_toxic(std::string_view text, const crashkit::NetToxic& t) {
  if (t.link.empty()) broken(fmt::format("toxic '{}': accepted without a link", text));
  if (t.toxic.text != text) broken(fmt::format("toxic '{}': kept as '{}'", text, t.toxic.text));
  if (t.toxic.time.count() < 0 || t.toxic.time > std::chrono::hours(24) ||
      t.toxic.jitter.count() < 0 || t.toxic.jitter > std::chrono::hours(24))
    broken(fmt::format("toxic '{}': a time outside 0..24h", text));
  if (t.toxic.kind == crashkit::net::Toxic::Kind::bandwidth &&
      (t.toxic.amount == 0 || t.toxic.amount > (1u << 30)))
    broken(fmt::format("toxic '{}': bandwidth {} out of range", text, t.toxic.amount));
}

void check_partition(std::string_view text, const std::vector<std::vector<int>>& groups,
                     int replicas) {
  if (groups.size() < 2) broken(fmt::format("partition '{}': fewer than two groups", text));
  std::set<int> seen;
  for (const auto& g : groups) {
    if (g.empty()) broken(fmt::format("partition '{}': an empty group", text));
    for (int r : g)
      if (r < 0 || r >= replicas || !seen.insert(r).second)
        broken(fmt::format("partition '{}': replica {} out of range or repeated", text, r));
  }
  const std::string printed = fmt::format("{}", groups);
  auto again = crashkit::parse_partition(printed, replicas);
  if (!again || *again != groups)
    broken(fmt::format("partition '{}' printed as '{}' does not read back", text, printed));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto t = crashkit::parse_net_toxic(text);
  if (t)
    check_toxic(text, *t);
  else
    check_rejection(t.error(), "toxic", "--net");
  const int replicas = size == 0 ? 3 : 1 + data[0] % 64;
  auto p = crashkit::parse_partition(text, replicas);
  if (p)
    check_partition(text, *p, replicas);
  else
    check_rejection(p.error(), "partition", "partition");
  return 0;
}
