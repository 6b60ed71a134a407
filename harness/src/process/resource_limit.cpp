// --rlimit NAME=VALUE (docs/resource-limits.md): systemd's Limit*= names and values.
#include "crashkit/harness/resource_limit.hpp"

#include <fmt/format.h>
#include <linux/capability.h>
#include <sys/resource.h>

#include <charconv>
#include <cstdlib>
#include <fstream>
#include <iterator>

#include "crashkit/crash_protocol.hpp"

namespace crashkit {
namespace {

struct Known {
  std::string_view name;
  int resource;
  bool bytes;  // takes K/M/G/T suffixes
};

constexpr Known kLimits[] = {
    {"CPU", RLIMIT_CPU, false},          {"FSIZE", RLIMIT_FSIZE, true},
    {"DATA", RLIMIT_DATA, true},         {"STACK", RLIMIT_STACK, true},
    {"CORE", RLIMIT_CORE, true},         {"RSS", RLIMIT_RSS, true},
    {"NOFILE", RLIMIT_NOFILE, false},    {"AS", RLIMIT_AS, true},
    {"NPROC", RLIMIT_NPROC, false},      {"MEMLOCK", RLIMIT_MEMLOCK, true},
    {"LOCKS", RLIMIT_LOCKS, false},      {"SIGPENDING", RLIMIT_SIGPENDING, false},
    {"MSGQUEUE", RLIMIT_MSGQUEUE, true}, {"NICE", RLIMIT_NICE, false},
    {"RTPRIO", RLIMIT_RTPRIO, false},    {"RTTIME", RLIMIT_RTTIME, false}};

// A whole number with one of `suffixes` (K, M, G, T: 1024-based) or none, checked for
// overflow; nullopt when not one. Shared by --rlimit's byte limits (KMGT), its counts (none)
// and parse_byte_size (KMG).
std::optional<std::uint64_t> sized(std::string_view s, std::string_view suffixes) {
  std::uint64_t mult = 1;
  if (!s.empty())
    if (auto at = suffixes.find(s.back()); at != std::string_view::npos) {
      mult = std::uint64_t{1} << (10 * (at + 1));
      s.remove_suffix(1);
    }
  std::uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc{} || end != s.data() + s.size() || v > UINT64_MAX / mult)
    return std::nullopt;
  return v * mult;
}

// "64", "512M", "infinity"; nullopt when not a value (RLIM_INFINITY itself is spelled out).
std::optional<std::uint64_t> value(std::string_view s, bool bytes) {
  if (s == "infinity") return RLIM_INFINITY;
  auto v = sized(s, bytes ? "KMGT" : "");
  if (!v || *v >= RLIM_INFINITY) return std::nullopt;
  return v;
}

}  // namespace

Result<ResourceLimit> parse_resource_limit(std::string_view option, std::string_view text) {
  auto bad = [&](std::string_view why) {
    return usage_error(
        fmt::format("{} '{}': {}; e.g. NOFILE=64, AS=512M, NOFILE=64:1024 "
                    "(docs/resource-limits.md)",
                    option, printable_text(text, 80), why));
  };
  const auto eq = text.find('=');
  if (eq == std::string_view::npos) return bad("give NAME=VALUE");
  const auto name = text.substr(0, eq);
  const Known* k = nullptr;
  for (const auto& known : kLimits)
    if (known.name == name) k = &known;
  if (k == nullptr)
    return bad(
        fmt::format("unknown limit '{}' (CPU, FSIZE, DATA, STACK, CORE, RSS, NOFILE, AS, "
                    "NPROC, MEMLOCK, LOCKS, SIGPENDING, MSGQUEUE, NICE, RTPRIO, RTTIME)",
                    printable_text(name, 40)));
  const auto rest = text.substr(eq + 1);
  const auto colon = rest.find(':');
  auto soft = value(rest.substr(0, colon), k->bytes);
  auto hard = colon == std::string_view::npos ? soft : value(rest.substr(colon + 1), k->bytes);
  if (!soft || !hard)
    return bad(k->bytes ? "not a size (a number with K, M, G or T, or infinity)"
                        : "not a count (a whole number, or infinity)");
  if (*soft > *hard) return bad("the soft limit is above the hard one");
  if (k->resource == RLIMIT_NOFILE && *soft < 3)
    return bad("NOFILE below 3 leaves no room for stdin, stdout and stderr");
  return ResourceLimit{k->resource, *soft, *hard, std::string(text)};
}

std::optional<std::uint64_t> parse_byte_size(std::string_view s) {
  return sized(s, "KMG");
}

Result<std::uint64_t> parse_memory_limit(std::string_view option, std::string_view text) {
  auto bytes = parse_byte_size(text);
  if (!bytes || *bytes < (1u << 20))
    return usage_error(fmt::format("{} '{}': give a size of at least 1M, e.g. 256M", option,
                                   printable_text(text, 40)));
  return *bytes;
}

std::optional<std::uint64_t> hard_limit_ceiling(const ResourceLimit& limit) {
  rlimit own{};
  if (getrlimit(static_cast<__rlimit_resource_t>(limit.resource), &own) != 0 ||
      limit.hard <= own.rlim_max)
    return std::nullopt;
  // CapEff's bit CAP_SYS_RESOURCE (24): the one capability that may raise a hard limit.
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.starts_with("CapEff:")) {
      const auto caps = std::strtoull(line.c_str() + 7, nullptr, 16);
      if (caps & (1ull << CAP_SYS_RESOURCE)) return std::nullopt;
    }
  return own.rlim_max;
}

std::string_view resource_limit_name(std::string_view key) {
  if (!key.starts_with("Limit")) return {};
  key.remove_prefix(5);
  for (const auto& known : kLimits)
    if (known.name == key) return known.name;
  return {};
}

}  // namespace crashkit
