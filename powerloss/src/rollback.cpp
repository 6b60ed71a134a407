// Rollback: decide, per journalled change, whether it was durable at the cut, and undo the
// ones that were not, newest first: directory entries first (names), then data (by inode, at
// the inode's name after the entries were restored).
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <map>
#include <random>
#include <system_error>

#include "crashkit/powerloss_journal.hpp"
#include "crashkit/powerloss_rollback.hpp"

namespace crashkit::powerloss {
namespace {

namespace fs = std::filesystem;
using Key = std::pair<std::uint64_t, std::uint64_t>;  // (dev, ino)

// The last durability event of each kind, by seq.
struct Durability {
  std::uint64_t all = 0;
  std::map<Key, std::uint64_t> file, dir;
  std::map<std::uint64_t, std::uint64_t> commit;  // device -> last fsync of anything on it

  explicit Durability(const std::vector<Record>& records) {
    for (const auto& r : records) {
      const Key k{r.h.dev, r.h.ino};
      switch (static_cast<Op>(r.h.op)) {
        case Op::sync_all:
          all = r.h.seq;
          break;
        case Op::sync_file:
          file[k] = r.h.seq;
          commit[r.h.dev] = r.h.seq;
          break;
        case Op::sync_dir:
          dir[k] = r.h.seq;
          commit[r.h.dev] = r.h.seq;
          break;
        default:
          break;
      }
    }
  }
  bool synced(const std::map<Key, std::uint64_t>& m, Key k, std::uint64_t seq) const {
    auto it = m.find(k);
    return seq < all || (it != m.end() && seq < it->second);
  }
  bool data_durable(const Record& r) const { return synced(file, {r.h.dev, r.h.ino}, r.h.seq); }
  bool entry_durable(const Record& r, Model model) const {
    bool dirs = synced(dir, {r.h.dev, r.h.ino}, r.h.seq);
    if (static_cast<Op>(r.h.op) == Op::rename)
      dirs = dirs && synced(dir, {r.h.dev, r.h.old_size}, r.h.seq);
    if (dirs || model != Model::ext4) return dirs;
    // ext4 and XFS: an fsync commits the file system's journal, and with it every directory
    // change made before it on that file system (file data still needs its own fsync).
    auto it = commit.find(r.h.dev);
    return it != commit.end() && r.h.seq < it->second;
  }
};

bool is_entry(Op op) {
  return op == Op::create || op == Op::unlink || op == Op::rename || op == Op::link ||
         op == Op::mkdir || op == Op::rmdir;
}
bool is_data(Op op) {
  return op == Op::write || op == Op::truncate || op == Op::map_image;
}

struct Context {
  const RollbackOptions& opt;
  std::string stash;
  RollbackReport& report;
  std::mt19937_64 rng;

  std::string show(const std::string& path) const {
    for (const auto& s : opt.scope)
      if (path.starts_with(s + "/")) return path.substr(s.size() + 1);
    return path;
  }
  std::string ago(const Record& r) const {
    if (opt.cut_ns == 0 || r.h.time_ns > opt.cut_ns) return "before the cut";
    return fmt::format("{:.1f} ms before the cut",
                       static_cast<double>(opt.cut_ns - r.h.time_ns) / 1e6);
  }
  std::string stashed(std::uint64_t dev, std::uint64_t ino) const {
    return stash + "/" + std::to_string(dev) + "." + std::to_string(ino);
  }
  bool coin() { return (rng() & 1) != 0; }
};

std::uint64_t inode_at(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

// Undoes one entry change; returns the report line.
std::string undo_entry(const Record& r, Context& cx) {
  const std::string at = r.dir + "/" + r.name;
  const std::string why = fmt::format("{}, directory never fsynced", cx.ago(r));
  std::error_code ec;
  switch (static_cast<Op>(r.h.op)) {
    case Op::create:
    case Op::link:
      if (inode_at(at) == r.h.target) fs::remove(at, ec);
      return fmt::format("{} created {}: entry removed", cx.show(at), why);
    case Op::mkdir:
      if (inode_at(at) == r.h.target) fs::remove_all(at, ec);
      return fmt::format("directory {} created {}: removed", cx.show(at), why);
    case Op::rmdir:
      fs::create_directory(at, ec);
      return fmt::format("directory {} removed {}: restored", cx.show(at), why);
    case Op::unlink:
      if (link(cx.stashed(r.h.dev, r.h.target).c_str(), at.c_str()) != 0)
        cx.report.errors.push_back(fmt::format("cannot restore unlinked {}", cx.show(at)));
      return fmt::format("{} unlinked {}: restored", cx.show(at), why);
    case Op::rename: {
      const std::string to = r.dir2 + "/" + r.name2;
      if (inode_at(to) == r.h.target) fs::rename(to, at, ec);
      if (r.h.offset != 0 && link(cx.stashed(r.h.dev, r.h.offset).c_str(), to.c_str()) != 0)
        cx.report.errors.push_back(
            fmt::format("cannot restore {} replaced by rename", cx.show(to)));
      return fmt::format("{} renamed {} {}{}: rename undone", cx.show(at),
                         r.h.offset != 0 ? "over" : "to", cx.show(to), fmt::format(", {}", why));
    }
    default:
      return {};
  }
}

// Every regular file under the scope, by inode (after the entries were restored).
std::map<Key, std::string> inode_paths(const std::vector<std::string>& scope) {
  std::map<Key, std::string> out;
  for (const auto& root : scope) {
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(root, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      struct stat st;
      if (lstat(it->path().c_str(), &st) == 0 && S_ISREG(st.st_mode))
        out.emplace(Key{st.st_dev, st.st_ino}, it->path().string());
    }
  }
  return out;
}

// Restores [offset, offset + bytes.size()) and, where the change grew the file, its old size.
// In torn mode each 512-byte sector of an overwrite is restored or kept at random, and a
// random prefix of the appended sectors survives.
void restore(int fd, const Record& r, Context& cx, bool torn) {
  const auto off = static_cast<off_t>(r.h.offset);
  const std::string& b = r.bytes;
  for (std::size_t at = 0; at < b.size(); at += 512) {
    const std::size_t n = std::min<std::size_t>(512, b.size() - at);
    if (torn && cx.coin()) continue;  // this sector of the new data reached the disk
    if (pwrite(fd, b.data() + at, n, off + static_cast<off_t>(at)) != static_cast<ssize_t>(n))
      cx.report.errors.push_back("cannot restore bytes of a file: " + std::string(strerror(errno)));
  }
  const auto op = static_cast<Op>(r.h.op);
  if (op == Op::map_image) return;
  std::uint64_t size = r.h.old_size;
  const std::uint64_t end = op == Op::write ? r.h.offset + r.h.len : r.h.len;
  if (torn && end > size) size += 512 * (cx.rng() % ((end - size + 511) / 512 + 1));
  if (op == Op::truncate || end > r.h.old_size)
    if (ftruncate(fd, static_cast<off_t>(std::min(size, std::max(end, r.h.old_size)))) != 0)
      cx.report.errors.push_back("cannot restore a file's size");
}

std::string describe_data(const Record& r, const Context& cx, const std::string& path,
                          const char* verdict) {
  const auto op = static_cast<Op>(r.h.op);
  const std::string f = cx.show(path);
  if (op == Op::truncate)
    return fmt::format("{} resized {} -> {} bytes {}, never fsynced: {}", f, r.h.old_size, r.h.len,
                       cx.ago(r), verdict);
  if (op == Op::map_image)
    return fmt::format("{} bytes {}-{} changed through a shared mapping, never msynced: {}", f,
                       r.h.offset, r.h.offset + r.h.len - 1, verdict);
  return fmt::format("{} bytes {}-{} written {}, never fsynced: {}", f, r.h.offset,
                     r.h.offset + r.h.len - 1, cx.ago(r), verdict);
}

void undo_data(const Record& r, const std::map<Key, std::string>& paths, Context& cx) {
  auto it = paths.find({r.h.dev, r.h.ino});
  if (it == paths.end()) return;  // its name is gone: nothing of it survived the cut
  const bool torn = cx.opt.state == CrashState::torn && static_cast<Op>(r.h.op) == Op::write;
  if (cx.opt.state == CrashState::subset && cx.coin()) {
    ++cx.report.kept;
    cx.report.lines.push_back(describe_data(r, cx, it->second, "kept (subset)"));
    return;
  }
  if ((r.h.flags & kFlagIncomplete) != 0)
    cx.report.errors.push_back(cx.show(it->second) + ": before-image unreadable, rollback inexact");
  int fd = open(it->second.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    cx.report.errors.push_back("cannot open " + cx.show(it->second) + " to roll it back");
    return;
  }
  restore(fd, r, cx, torn);
  close(fd);
  ++cx.report.undone;
  cx.report.lines.push_back(describe_data(
      r, cx, it->second, torn ? "torn (512-byte sectors old or new)" : "rolled back"));
}

}  // namespace

RollbackReport roll_back(const std::string& journal_dir, const RollbackOptions& options) {
  RollbackReport report;
  auto journal = read_journal_dir(journal_dir);
  report.torn_records = journal.torn;
  report.errors = journal.errors;
  const Durability d(journal.records);
  Context cx{options, journal_dir + "/" + std::string(kStashDir), report,
             std::mt19937_64(options.seed)};
  const auto& recs = journal.records;
  for (auto it = recs.rbegin(); it != recs.rend(); ++it) {
    if (!is_entry(static_cast<Op>(it->h.op))) continue;
    if (d.entry_durable(*it, options.model)) {
      ++report.durable;
      continue;
    }
    ++report.undone;
    report.lines.push_back(undo_entry(*it, cx));
  }
  const auto paths = inode_paths(options.scope);
  for (auto it = recs.rbegin(); it != recs.rend(); ++it) {
    const auto op = static_cast<Op>(it->h.op);
    if (op == Op::nondurable) {
      auto p = paths.find({it->h.dev, it->h.ino});
      report.lines.push_back(fmt::format("{}: sync_file_range {} promised nothing",
                                         p != paths.end() ? cx.show(p->second) : "a file",
                                         cx.ago(*it)));
    }
    if (!is_data(op)) continue;
    if (d.data_durable(*it)) {
      ++report.durable;
      continue;
    }
    undo_data(*it, paths, cx);
  }
  return report;
}

bool reset_journal_dir(const std::string& dir, std::string& error) {
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::create_directories(fs::path(dir) / std::string(kStashDir), ec);
  if (ec) {
    error = fmt::format("cannot create {}: {}", dir, ec.message());
    return false;
  }
  int fd = open((dir + "/" + std::string(kSeqFile)).c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC,
                0600);
  if (fd < 0 || ftruncate(fd, 4096) != 0) {
    error = fmt::format("cannot create {}/seq: {}", dir, strerror(errno));
    if (fd >= 0) close(fd);
    return false;
  }
  close(fd);
  return true;
}

}  // namespace crashkit::powerloss
