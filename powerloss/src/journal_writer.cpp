// The shim's journal: arming from the environment, the mmapped journal and sequence counter,
// record appends, scope checks and the stash. The real libc functions are reached through
// `real::` (dlsym RTLD_NEXT) so the shim never journals its own I/O.
#include "journal_writer.hpp"

#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <new>
#include <vector>

#include "real_calls.hpp"

namespace crashkit::powerloss {
namespace {

struct State {
  bool active = false;
  std::string dir;                 // the journal dir
  std::vector<std::string> scope;  // absolute, no trailing '/'
  std::uint64_t* seq = nullptr;    // shared across processes
  char* journal = nullptr;         // kJournalReserve bytes, shared mapping of our journal
  std::size_t tail = 64;           // first free byte (after the 64-byte file header)
  int fd = -1;                     // the journal, for records too large to copy into the map
  std::string journal_path;
  std::size_t allocated = 0;  // journal bytes with blocks allocated (fallocate) ahead
  dev_t journal_dev = 0;
  ino_t journal_ino = 0;
  pid_t pid = 0;  // the journal's process (getpid() once, not per record)
  std::mutex mu;
};

State& state() {
  // Never destroyed (calls may come during exit), and not from the heap: an allocator that
  // initialises itself through interposed calls (jemalloc's munmap in redis-server) would
  // re-enter its own initialisation and deadlock.
  alignas(State) static unsigned char storage[sizeof(State)];
  static State* s = new (storage) State();
  return *s;
}

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "crashkit powerloss: %s: %s; the power-loss journal cannot be kept\n", what,
               std::strerror(errno));
  _exit(87);
}

void map_journal(State& s) {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  std::string path = s.dir + "/" + std::string(kJournalPrefix) + std::to_string(getpid()) + "." +
                     std::to_string(ts.tv_sec * 1000000000LL + ts.tv_nsec);
  int fd = real::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) die(path.c_str());
  if (real::ftruncate(fd, static_cast<off_t>(kJournalReserve)) != 0) die("journal size");
  void* p = mmap(nullptr, kJournalReserve, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) die("journal mmap");
  madvise(p, kJournalReserve, MADV_RANDOM);  // no readahead of the journal's unwritten pages
  if (s.fd >= 0) close(s.fd);                // a fork child's copy of its parent's journal fd
  s.fd = fd;
  s.journal_path = path;
  s.allocated = 0;
  struct stat st;
  if (fstat(fd, &st) != 0) die("journal stat");
  s.journal_dev = st.st_dev;
  s.journal_ino = st.st_ino;
  s.journal = static_cast<char*>(p);
  std::memcpy(s.journal, "CKPLJNL1", 8);
  s.tail = 64;
  s.pid = getpid();
}

// After fork the child writes its own journal: the parent's mapping stays the parent's.
void after_fork_in_child() {
  State& s = state();
  if (!s.active) return;
  new (&s.mu) std::mutex();  // a lock held by another parent thread at fork is not ours
  s.journal = nullptr;       // its own journal, made at its first record (most forks exec)
}

std::string normalise(std::string p) {
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return p;
}

__attribute__((constructor(101))) void arm_from_environment() {
  const char* dir = getenv(std::string(kDirVariable).c_str());
  if (dir == nullptr || *dir == '\0') return;
  State& s = state();
  char resolved[PATH_MAX];
  s.dir = normalise(realpath(dir, resolved) != nullptr ? resolved : dir);
  if (const char* scope = getenv(std::string(kScopeVariable).c_str())) {
    std::string_view rest(scope);
    while (!rest.empty()) {
      auto colon = rest.find(':');
      std::string one(rest.substr(0, colon));
      rest = colon == std::string_view::npos ? std::string_view{} : rest.substr(colon + 1);
      char buf[PATH_MAX];
      if (!one.empty()) s.scope.push_back(normalise(realpath(one.c_str(), buf) ? buf : one));
    }
  }
  int fd = real::open((s.dir + "/" + std::string(kSeqFile)).c_str(), O_RDWR | O_CLOEXEC, 0);
  if (fd < 0) die("sequence file");
  void* p = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (p == MAP_FAILED) die("sequence mmap");
  s.seq = static_cast<std::uint64_t*>(p);
  __atomic_add_fetch(s.seq + 1, 1, __ATOMIC_SEQ_CST);  // this image is armed
  pthread_atfork(nullptr, nullptr, after_fork_in_child);
  s.active = true;
}

std::uint64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ULL +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

}  // namespace

bool shim_active() {
  return state().active;
}

bool path_in_scope(std::string_view path) {
  auto under = [&](const std::string& dir) {
    return path.starts_with(dir) && (path.size() == dir.size() || path[dir.size()] == '/');
  };
  if (under(state().dir)) return false;  // the journal itself, even inside a scope dir
  for (const auto& s : state().scope)
    if (under(s)) return true;
  return false;
}

// fd_facts runs before every write, so it avoids two hidden costs.
//
// The scope check is a readlink of /proc/self/fd/N (several microseconds, more than the write
// it guards). An in-scope verdict is cached per fd number and trusted while the fd still names
// the same (dev, ino), so the readlink runs again only when the fd names another inode. Only
// in-scope verdicts are cached: a stale one can then only make the shim journal a file that
// left the scope (renamed out while open, or its inode number reused outside the scope at the
// same fd), which rollback ignores (it finds files under the scope), never skip a file inside
// it. Lock-free and never blocking (a seqlock whose writer gives up if another thread is mid-
// update, whose reader treats any race as a miss): safe in threads and after a fork taken
// mid-update.
//
// The inode's facts come from statx without STATX_CTIME/STATX_MTIME, not fstat: since Linux
// 6.13 (multigrain timestamps) reading an inode's ctime marks it queried, and the next write
// must then take a fine-grained timestamp and dirty the inode (about 0.8 us more per write on
// ext4). fstat only where statx is missing or filtered.
namespace {

struct ScopeSlot {
  std::atomic<std::uint32_t> seq{0};  // odd: being written; 0: never filled
  std::atomic<std::uint64_t> dev{0}, ino{0};
};
constexpr int kScopeSlots = 4096;  // fds beyond this take the uncached path
ScopeSlot g_in_scope[kScopeSlots];

bool cached_in_scope(int fd, std::uint64_t dev, std::uint64_t ino) {
  if (fd >= kScopeSlots) return false;
  ScopeSlot& c = g_in_scope[fd];
  const std::uint32_t before = c.seq.load(std::memory_order_acquire);
  if (before == 0 || (before & 1) != 0) return false;
  const std::uint64_t cached_dev = c.dev.load(std::memory_order_relaxed);
  const std::uint64_t cached_ino = c.ino.load(std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_acquire);
  return c.seq.load(std::memory_order_relaxed) == before && cached_dev == dev && cached_ino == ino;
}

void cache_in_scope(int fd, std::uint64_t dev, std::uint64_t ino) {
  if (fd >= kScopeSlots) return;
  ScopeSlot& c = g_in_scope[fd];
  std::uint32_t s = c.seq.load(std::memory_order_relaxed);
  if ((s & 1) != 0 || !c.seq.compare_exchange_strong(s, s + 1, std::memory_order_relaxed))
    return;  // another thread is filling it: leave it to that one
  std::atomic_thread_fence(std::memory_order_release);
  c.dev.store(dev, std::memory_order_relaxed);
  c.ino.store(ino, std::memory_order_relaxed);
  c.seq.store(s + 2, std::memory_order_release);
}

struct InodeFacts {
  dev_t dev;
  ino_t ino;
  mode_t mode;
  off_t size;
};

bool inode_facts(int fd, InodeFacts& out) {
  constexpr unsigned kWant = STATX_TYPE | STATX_INO | STATX_SIZE;
  struct statx sx;
  if (statx(fd, "", AT_EMPTY_PATH, kWant, &sx) == 0 && (sx.stx_mask & kWant) == kWant) {
    out = {makedev(sx.stx_dev_major, sx.stx_dev_minor), static_cast<ino_t>(sx.stx_ino),
           static_cast<mode_t>(sx.stx_mode), static_cast<off_t>(sx.stx_size)};
    return true;
  }
  if (errno == EBADF) return false;
  struct stat st;
  if (fstat(fd, &st) != 0) return false;
  out = {st.st_dev, st.st_ino, st.st_mode, st.st_size};
  return true;
}

}  // namespace

FdFacts fd_facts(int fd) {
  FdFacts f;
  if (!shim_active() || fd < 0) return f;
  InodeFacts st;
  if (!inode_facts(fd, st)) return f;
  if (!S_ISREG(st.mode) && !S_ISDIR(st.mode)) return f;
  f.in_scope = cached_in_scope(fd, st.dev, st.ino);
  if (!f.in_scope) {
    char link[64], path[PATH_MAX];
    std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n <= 0) return f;
    f.in_scope = path_in_scope(std::string_view(path, static_cast<std::size_t>(n)));
    if (!f.in_scope) return f;
    cache_in_scope(fd, st.dev, st.ino);
  }
  int fl = fcntl(fd, F_GETFL);
  f.directory = S_ISDIR(st.mode);
  f.sync_writes = fl >= 0 && (fl & (O_SYNC | O_DSYNC)) != 0;
  f.append = fl >= 0 && (fl & O_APPEND) != 0;
  f.dev = st.dev;
  f.ino = st.ino;
  f.size = st.size;
  return f;
}

bool split_at(int dirfd, const char* path, std::string& dir, std::string& name) {
  if (!shim_active() || path == nullptr || *path == '\0') return false;
  std::string p(path);
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  auto slash = p.rfind('/');
  std::string parent = slash == std::string::npos ? "." : slash == 0 ? "/" : p.substr(0, slash);
  name = slash == std::string::npos ? p : p.substr(slash + 1);
  if (parent[0] != '/') {
    char base[PATH_MAX];
    if (dirfd == AT_FDCWD) {
      if (getcwd(base, sizeof base) == nullptr) return false;
    } else {
      char link[64];
      std::snprintf(link, sizeof link, "/proc/self/fd/%d", dirfd);
      ssize_t n = readlink(link, base, sizeof base - 1);
      if (n <= 0) return false;
      base[n] = '\0';
    }
    parent = std::string(base) + "/" + parent;
  }
  char buf[PATH_MAX];
  if (realpath(parent.c_str(), buf) == nullptr) return false;
  dir = buf;
  return path_in_scope(dir);
}

// Records at least this large are written with pwritev: copying them into the mapping would
// first fault in (and zero) the file's pages, which costs more than the write itself.
constexpr std::size_t kWriteThrough = 1024;

const char kZeros[8] = {};  // a record's padding to 8 bytes

void write_record(State& s, const RecordHeader& h, const void* payload, std::size_t n,
                  std::size_t pad) {
  // statx, not fstat: asking for the timestamps would make the next write update them finely.
  struct statx stx;
  if (statx(s.fd, "", AT_EMPTY_PATH, STATX_INO, &stx) != 0 ||
      makedev(stx.stx_dev_major, stx.stx_dev_minor) != s.journal_dev ||
      stx.stx_ino != s.journal_ino) {
    // The daemon closed (or reused) our descriptor: open the journal again by its name.
    s.fd = real::open(s.journal_path.c_str(), O_RDWR | O_CLOEXEC, 0);
    if (s.fd < 0) die("journal reopen");
  }
  iovec iov[3] = {{const_cast<RecordHeader*>(&h), sizeof h},
                  {const_cast<void*>(payload), n},
                  {const_cast<char*>(kZeros), pad}};
  const auto want = static_cast<ssize_t>(sizeof h + n + pad);
  if (real::pwritev_fn()(s.fd, iov, 3, static_cast<off_t>(s.tail)) != want) die("journal write");
}

// Allocates the journal's blocks ahead, 8 MiB at a time, rather than one page per record.
void allocate_ahead(State& s, std::size_t end) {
  constexpr std::size_t kAhead = std::size_t{8} << 20;
  if (end <= s.allocated || s.allocated >= kJournalReserve) return;
  const std::size_t to = std::min(kJournalReserve, (end / kAhead + 2) * kAhead);
  if (syscall(SYS_fallocate, s.fd, 0, static_cast<off_t>(s.allocated),
              static_cast<off_t>(to - s.allocated)) == 0)  // not through the shim's fallocate
    s.allocated = to;
}

void append(const Entry& e) {
  State& s = state();
  const std::size_t raw = sizeof(RecordHeader) + e.payload_len;
  const std::size_t len = (raw + 7) & ~std::size_t{7};
  std::lock_guard lk(s.mu);
  if (s.journal == nullptr) map_journal(s);  // lazily: a process that never writes has none
  if (s.tail + len > kJournalReserve) {
    errno = ENOSPC;
    die("journal full (1 GiB per process)");
  }
  RecordHeader h{};
  h.magic = kRecordMagic;
  h.length = static_cast<std::uint32_t>(len);
  h.op = static_cast<std::uint16_t>(e.op);
  h.flags = e.flags;
  h.seq = __atomic_add_fetch(s.seq, 1, __ATOMIC_SEQ_CST);
  h.time_ns = now_ns();
  h.dev = e.dev;
  h.ino = e.ino;
  h.target = e.target;
  h.offset = e.offset;
  h.len = e.len;
  h.old_size = e.old_size;
  h.payload = static_cast<std::uint32_t>(e.payload_len);
  h.pid = s.pid;
  const std::size_t pad = len - raw;
  allocate_ahead(s, s.tail + len);
  std::uint32_t crc = crc32c(&h, sizeof h);
  crc = crc32c(e.payload, e.payload_len, crc);
  h.crc = crc32c(kZeros, pad, crc);
  if (e.payload_len >= kWriteThrough) {
    write_record(s, h, e.payload, e.payload_len, pad);
  } else {
    // Small records are copied into the shared mapping, payload first and the header last:
    // a record is there once its header is (a SIGKILL stops the copy between two stores).
    char* at = s.journal + s.tail;
    if (e.payload_len > 0) std::memcpy(at + sizeof h, e.payload, e.payload_len);
    std::memcpy(at, &h, sizeof h);
  }
  s.tail += len;
}

void append_paths(Entry e, std::string_view dir, std::string_view name, std::string_view dir2,
                  std::string_view name2) {
  std::string payload;
  payload.reserve(dir.size() + name.size() + dir2.size() + name2.size() + 4);
  for (auto part : {dir, name}) payload.append(part).push_back('\0');
  if (!dir2.empty())
    for (auto part : {dir2, name2}) payload.append(part).push_back('\0');
  e.payload = payload.data();
  e.payload_len = payload.size();
  append(e);
}

bool stash_inode(const std::string& path, std::uint64_t dev, std::uint64_t ino) {
  State& s = state();
  std::string to =
      s.dir + "/" + std::string(kStashDir) + "/" + std::to_string(dev) + "." + std::to_string(ino);
  if (link(path.c_str(), to.c_str()) == 0 || errno == EEXIST) return true;
  if (errno != EXDEV) return false;
  // Another file system: keep a copy of the bytes (the inode itself cannot be kept).
  int in = real::open(path.c_str(), O_RDONLY | O_CLOEXEC, 0);
  if (in < 0) return false;
  int out = real::open(to.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  char buf[65536];
  ssize_t n;
  while (out >= 0 && (n = read(in, buf, sizeof buf)) > 0)
    if (real::write(out, buf, static_cast<std::size_t>(n)) != n) break;
  close(in);
  if (out >= 0) close(out);
  return out >= 0;
}

void append_image(Op op, int fd, const FdFacts& f, off_t offset, std::uint64_t len,
                  std::uint64_t new_len) {
  std::uint64_t have = 0;
  if (offset < f.size)
    have = std::min<std::uint64_t>(len, static_cast<std::uint64_t>(f.size - offset));
  std::vector<char> before(have);
  std::size_t got = 0;
  int rfd = fd;
  if (have > 0 && (fcntl(fd, F_GETFL) & O_ACCMODE) == O_WRONLY) {
    char link[64];  // opened write-only: read the same inode through a second description
    std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    rfd = real::open(link, O_RDONLY | O_CLOEXEC, 0);
  }
  while (rfd >= 0 && got < have) {
    ssize_t n = pread(rfd, before.data() + got, have - got, offset + static_cast<off_t>(got));
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  if (rfd >= 0 && rfd != fd) close(rfd);
  append({.op = op,
          .dev = f.dev,
          .ino = f.ino,
          .offset = static_cast<std::uint64_t>(offset),
          .len = new_len,
          .old_size = static_cast<std::uint64_t>(f.size),
          .flags = static_cast<std::uint16_t>(got < have ? kFlagIncomplete : 0),
          .payload = before.data(),
          .payload_len = got});
}

}  // namespace crashkit::powerloss
