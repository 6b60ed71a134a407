// The shim's side of the power-loss journal: one mmapped journal per process image, records
// appended under a process-local mutex, a global sequence from the shared `seq` file, and the
// per-fd facts the interposed calls need. Internal to the shim (powerloss/src/).
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "crashkit/powerloss_journal.hpp"

namespace crashkit::powerloss {

// True once the shim armed itself (CRASHKIT_POWERLOSS_DIR set and the journal mapped).
bool shim_active();

// Is this absolute, normalised path inside one of the scope directories?
bool path_in_scope(std::string_view path);

// The facts about an fd the shim needs; `in_scope` false for anything outside the scope
// (sockets, pipes, files elsewhere), which the shim then leaves alone.
struct FdFacts {
  bool in_scope = false;
  bool directory = false;
  bool sync_writes = false;  // O_SYNC or O_DSYNC: every write is durable when it returns
  bool append = false;
  dev_t dev = 0;
  ino_t ino = 0;
  off_t size = 0;
};
FdFacts fd_facts(int fd);

// The directory part of `path` (relative to `dirfd`) made absolute and normalised, and the
// last component. False if it cannot be resolved (then the call is not journalled).
bool split_at(int dirfd, const char* path, std::string& dir, std::string& name);

struct Entry {
  Op op;
  std::uint64_t dev = 0, ino = 0, target = 0, offset = 0, len = 0, old_size = 0;
  std::uint16_t flags = 0;
  const void* payload = nullptr;
  std::size_t payload_len = 0;
};
// Appends one record (seq and time filled in). Thread-safe; not async-signal-safe.
void append(const Entry& e);
// An entry op's record: "dir\0name\0[dir2\0name2\0]" as the payload.
void append_paths(Entry e, std::string_view dir, std::string_view name, std::string_view dir2 = {},
                  std::string_view name2 = {});

// Keeps the inode at `path` alive by hard-linking it into the stash (copying it if the stash
// is on another file system). Returns false if it does not exist.
bool stash_inode(const std::string& path, std::uint64_t dev, std::uint64_t ino);

// Journals the current bytes [offset, offset + len) of an in-scope fd (clipped to its size)
// as a record of kind `op` (write, truncate, map_image).
void append_image(Op op, int fd, const FdFacts& f, off_t offset, std::uint64_t len,
                  std::uint64_t new_len);

}  // namespace crashkit::powerloss
