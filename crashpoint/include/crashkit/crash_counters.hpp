// Layout of the CRASHKIT_COUNTERS file: created and sized by the harness, mmapped shared by
// the daemon, which counts every crossing there. Counts survive a SIGKILL because they live
// in the page cache, not in the dead process (RocksDB's ExpectedState idea).
//
//   auto counts = crashkit::read_crash_counters("/run/x/counters");  // name -> crossings
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace crashkit {

struct CounterFileHeader {
  char magic[8];           // "CKCOUNT1"
  std::uint32_t capacity;  // number of entries after the header
  std::uint32_t used;      // entries claimed by the daemon
  char reserved[48];
};

struct CounterEntry {
  char name[112];       // NUL-terminated point name
  std::uint64_t count;  // crossings (atomically incremented)
  std::uint64_t reserved;
};

static_assert(sizeof(CounterFileHeader) == 64);
static_assert(sizeof(CounterEntry) == 128);

inline constexpr std::uint32_t kCounterCapacity = 4096;
inline constexpr std::size_t kCounterFileSize =
    sizeof(CounterFileHeader) + kCounterCapacity * sizeof(CounterEntry);

// Creates (truncates) a zeroed counters file of kCounterFileSize. Returns false with errno set.
bool create_crash_counters(const std::string& path);
// Reads the counts a daemon left. Empty if the file is missing or was never armed.
std::map<std::string, std::uint64_t> read_crash_counters(const std::string& path);

}  // namespace crashkit
