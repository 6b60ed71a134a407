// A really full disk (docs/resource-limits.md): the target's data dir runs out of space, on
// every write path, not only where a crash point injects ENOSPC.
//
//   auto d = parse_disk_full("--disk-full", "tmpfs:16M");  // the data dir on a 16 MiB tmpfs
//   d->free = 0;                                          // a filler leaves nothing free...
//   d->fill_at = std::chrono::milliseconds(20);           // ...20 ms into the first workload
//   spec.disk_full = *d;
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "crashkit/harness/duration.hpp"
#include "crashkit/harness/resource_limit.hpp"  // parse_byte_size
#include "crashkit/harness/result.hpp"

namespace crashkit {

struct DiskFull {
  // tmpfs: a tmpfs of `size` mounted on the data dir (needs CAP_SYS_ADMIN; the filler stays
  // small and nothing else on the machine runs short). ext4: an ext4 image of `size` on a loop
  // device mounted there (root; real block allocation, journal and fsync). fs: the data dir's
  // own file system, filled by a file in the run dir (no privilege; everything else on that
  // file system runs short as well).
  enum class On { tmpfs, ext4, fs };
  On on = On::tmpfs;
  std::uint64_t size = 0;  // tmpfs, ext4
  std::uint64_t free = 0;  // what the filler leaves free, in bytes
  // When the filler is made: before the first start (after --prepare) unless one of these is
  // set: this long into the first workload, or once the first workload's ledger holds this
  // many acknowledged operations ("acked" lines: `crashkit workload`, kvd-workload).
  std::optional<Duration> fill_at;
  std::uint64_t fill_at_op = 0;
  bool fills_later() const { return fill_at || fill_at_op > 0; }
  // "20ms" or "op:5", as --fill-at reads it; empty when filled before the first start.
  std::string fill_at_text() const;
  std::string text;  // "tmpfs:16M" or "fs", as written
};

// "tmpfs:SIZE" (SIZE with K, M or G, 1024-based; at least 64K), "ext4:SIZE" (at least 2M) or
// "fs". `option` starts the one-line usage error.
Result<DiskFull> parse_disk_full(std::string_view option, std::string_view text);
// --fill-at / fill_at: a duration ("20ms") or "op:K" (K from 1 to 1e9) into `d`.
Status parse_fill_at(std::string_view option, std::string_view text, DiskFull& d);

}  // namespace crashkit
