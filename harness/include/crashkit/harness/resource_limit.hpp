// Resource limits for the target (docs/resource-limits.md): setrlimit(2) in the child before
// exec, as systemd's LimitNOFILE=, LimitAS=, ... do. A cell under a low limit shows what the
// daemon does when it runs out (EMFILE, ENOMEM, EAGAIN), on every code path, not only where a
// developer planted an error.
//
//   auto l = parse_resource_limit("--rlimit", "NOFILE=64");     // soft = hard = 64
//   auto m = parse_resource_limit("--rlimit", "AS=512M");       // bytes, 1024-based suffixes
//   auto n = parse_resource_limit("--rlimit", "NOFILE=64:1024"); // soft:hard
//   spec.rlimits.push_back(*l);   // the target only: workload and check commands are unlimited
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "crashkit/harness/result.hpp"

namespace crashkit {

struct ResourceLimit {
  int resource = 0;        // RLIMIT_NOFILE, RLIMIT_AS, ...
  std::uint64_t soft = 0;  // RLIM_INFINITY for "infinity"
  std::uint64_t hard = 0;
  std::string text;  // as written: "NOFILE=64"
};

// "NAME=VALUE" or "NAME=SOFT:HARD". NAME as systemd's Limit*= without "Limit" (CPU, FSIZE, DATA,
// STACK, CORE, RSS, NOFILE, AS, NPROC, MEMLOCK, LOCKS, SIGPENDING, MSGQUEUE, NICE, RTPRIO,
// RTTIME); VALUE a count, "infinity", or for the byte limits a size with K, M, G or T (1024).
// `option` starts the one-line usage error ("--rlimit", "matrix.yaml:4: rlimits").
Result<ResourceLimit> parse_resource_limit(std::string_view option, std::string_view text);

// "4K", "1M", "0": a size in bytes with K, M or G (1024-based), for --disk-free and --memory;
// nullopt when not one (overflow included).
std::optional<std::uint64_t> parse_byte_size(std::string_view text);

// --memory / `memory:`: a size of at least 1M; the usage error starts with `option`.
Result<std::uint64_t> parse_memory_limit(std::string_view option, std::string_view text);

// What this process cannot give a child: when `limit`'s hard value is above crashkit's own hard
// limit and it lacks CAP_SYS_RESOURCE (root in a container may lack it too), that own hard limit;
// nullopt when setrlimit in the child will take it.
std::optional<std::uint64_t> hard_limit_ceiling(const ResourceLimit& limit);

// The limit's name for a systemd key ("LimitNOFILE" -> "NOFILE"), or empty when `key` is none.
std::string_view resource_limit_name(std::string_view systemd_key);

}  // namespace crashkit
