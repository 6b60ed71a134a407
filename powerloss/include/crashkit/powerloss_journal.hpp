// The power-loss journal: written by the preload shim inside the target (powerloss/src/shim.cpp),
// read by the harness after SIGKILL of the whole tree to undo what never became durable
// (harness/src/powerloss/). One file per process image, records appended in place through a
// shared mmap (no syscall per record, and a SIGKILL loses nothing already copied: the pages
// belong to the page cache). A global sequence number, from a shared mmapped counter, orders
// the records of every process; a record is valid only if its checksum is.
//
//   for (auto& r : crashkit::powerloss::read_journal_dir(dir).records) ...
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace crashkit::powerloss {

// Environment of a power-loss target, set by the harness.
inline constexpr std::string_view kDirVariable = "CRASHKIT_POWERLOSS_DIR";      // journal dir
inline constexpr std::string_view kScopeVariable = "CRASHKIT_POWERLOSS_SCOPE";  // dirs, ':'-joined

// Files in the journal dir.
// 4 KiB: the global sequence (a std::uint64_t at offset 0) and how many process images armed
// the shim (at offset 8): zero after a start means the target never loaded it.
inline constexpr std::string_view kSeqFile = "seq";
inline constexpr std::string_view kStashDir = "stash";    // inodes kept alive: "<dev>.<ino>"
inline constexpr std::string_view kJournalPrefix = "j.";  // "j.<pid>.<generation>"
inline constexpr std::size_t kJournalReserve = std::size_t{1} << 30;  // sparse, mapped once

enum class Op : std::uint16_t {
  write = 1,   // before a data write: [offset, offset+len) of (dev, ino); payload: the bytes
               // of that range that existed (min(len, old_size - offset)); old_size
  truncate,    // before a size change: new size in len, old_size; payload: cut bytes
  create,      // after: entry name in dir (dev, ino = dir); target = new inode; path payload
  unlink,      // after: entry removed from dir; target kept in the stash; path payload
  rename,      // after: from (dir, name) to (dir2, name2); target = the moved inode; dev/ino
               // = the destination directory, old_size = the source directory's inode;
               // offset = the replaced inode (0: none), kept in the stash
  link,        // after: new entry for target
  mkdir,       // after (offset: its mode)
  rmdir,       // after (offset: its mode)
  sync_file,   // after fsync/fdatasync/msync(MS_SYNC)/O_SYNC write returned: (dev, ino) durable
  sync_dir,    // after fsync of a directory: its entries (dev, ino) durable
  sync_all,    // after sync()/syncfs() returned: everything so far durable
  map_image,   // at mmap(PROT_WRITE, MAP_SHARED) and after each msync(MS_SYNC): the mapped
               // range's current bytes, restored if later changes are not synced
  nondurable,  // a call that promises nothing (sync_file_range): recorded for the report only
};

inline constexpr std::uint32_t kRecordMagic = 0x4c504b43;  // "CKPL"
inline constexpr std::uint16_t kFlagData = 1;              // sync_file came from fdatasync
inline constexpr std::uint16_t kFlagIncomplete = 2;  // the before-image could not be read whole

struct RecordHeader {
  std::uint32_t magic;
  std::uint32_t length;  // the whole record, header included, padded to 8 bytes
  std::uint32_t crc;     // CRC-32C of the record with this field zero
  std::uint16_t op;
  std::uint16_t flags;    // kFlag* bits
  std::uint64_t seq;      // global order
  std::uint64_t time_ns;  // CLOCK_MONOTONIC when recorded
  std::uint64_t dev;      // the file (data ops, sync_file) or the directory (entry ops)
  std::uint64_t ino;
  std::uint64_t target;  // entry ops: the inode the entry names
  std::uint64_t offset;  // write: offset; rename: the replaced inode (0: none)
  std::uint64_t len;     // write: bytes written; truncate: new size
  std::uint64_t old_size;
  std::uint32_t payload;  // bytes of payload after the header
  std::int32_t pid;
};
static_assert(sizeof(RecordHeader) == 88);

// Path payloads (entry ops): "dir\0name\0" and, for rename, "dir2\0name2\0"; dirs absolute.
struct Record {
  RecordHeader h;
  std::string bytes;                   // the payload: before-image or paths
  std::string dir, name, dir2, name2;  // decoded paths (entry ops)
};

struct JournalDir {
  std::vector<Record> records;  // every valid record of every journal, in seq order
  std::size_t torn = 0;         // records dropped: bad checksum (a process died mid-record)
  std::vector<std::string> errors;
};

std::uint32_t crc32c(const void* data, std::size_t n, std::uint32_t crc = 0);
// How many process images armed the shim with this journal dir (0: none, or no such dir).
std::uint64_t armed_count(const std::string& journal_dir);
JournalDir read_journal_dir(const std::string& dir);

}  // namespace crashkit::powerloss
