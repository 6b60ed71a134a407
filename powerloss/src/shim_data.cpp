// Interposed data calls: writes, truncation, allocation, copies, syncs and shared mappings.
// Each journals what it needs to be undone BEFORE it mutates (the before-image), and each
// durability event AFTER it returned. Outside the scope, or before the shim armed, every call
// goes straight through.
#include <dlfcn.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstring>
#include <mutex>
#include <vector>

#include "journal_writer.hpp"
#include "real_calls.hpp"

using namespace crashkit::powerloss;

namespace {

std::uint64_t iov_total(const iovec* iov, int n) {
  std::uint64_t t = 0;
  for (int i = 0; i < n; ++i) t += iov[i].iov_len;
  return t;
}

// Journals a data write of `len` bytes at `off` (-1: the fd's position, or its end with
// O_APPEND). Returns the facts, for the sync after the call.
FdFacts before_write(int fd, off_t off, std::uint64_t len, bool append = false) {
  FdFacts f = fd_facts(fd);
  if (!f.in_scope || f.directory || len == 0) return f;
  if (off < 0) off = f.append || append ? f.size : lseek(fd, 0, SEEK_CUR);
  if (off < 0) return f;
  append_image(Op::write, fd, f, off, len, len);
  return f;
}

void after_sync(const FdFacts& f, bool data_only) {
  if (!f.in_scope) return;
  append({.op = f.directory ? Op::sync_dir : Op::sync_file,
          .dev = f.dev,
          .ino = f.ino,
          .flags = static_cast<std::uint16_t>(data_only ? kFlagData : 0)});
}

template <typename R>
R after_write(R r, const FdFacts& f, bool sync) {
  if (r >= 0 && f.in_scope && (sync || f.sync_writes)) after_sync(f, false);
  return r;
}

// Shared writable mappings of in-scope files, for msync.
struct Mapping {
  char* addr;
  std::size_t len;
  FdFacts file;
  off_t offset;
};
std::mutex g_maps_mu;
std::vector<Mapping>& maps() {
  static auto* m = new std::vector<Mapping>();
  return *m;
}

// Journals a size change of the file `f` describes (its facts read once by the caller).
void before_truncate(int fd, const FdFacts& f, off_t new_size) {
  if (!f.in_scope || f.directory || new_size == f.size) return;
  if (new_size < f.size)
    append_image(Op::truncate, fd, f, new_size, static_cast<std::uint64_t>(f.size - new_size),
                 static_cast<std::uint64_t>(new_size));
  else
    append({.op = Op::truncate,
            .dev = f.dev,
            .ino = f.ino,
            .len = static_cast<std::uint64_t>(new_size),
            .old_size = static_cast<std::uint64_t>(f.size)});
}

}  // namespace

#define REAL(ret, name, params) static auto real_##name = real::next<ret(*) params>(#name)

extern "C" {

ssize_t write(int fd, const void* buf, size_t n) {
  REAL(ssize_t, write, (int, const void*, size_t));
  auto f = before_write(fd, -1, n);
  return after_write(real_write(fd, buf, n), f, false);
}

ssize_t pwrite(int fd, const void* buf, size_t n, off_t off) {
  REAL(ssize_t, pwrite, (int, const void*, size_t, off_t));
  auto f = before_write(fd, off, n);
  return after_write(real_pwrite(fd, buf, n, off), f, false);
}
ssize_t pwrite64(int fd, const void* buf, size_t n, off_t off) __attribute__((alias("pwrite")));

ssize_t writev(int fd, const iovec* iov, int cnt) {
  REAL(ssize_t, writev, (int, const iovec*, int));
  auto f = before_write(fd, -1, iov_total(iov, cnt));
  return after_write(real_writev(fd, iov, cnt), f, false);
}

ssize_t pwritev(int fd, const iovec* iov, int cnt, off_t off) {
  REAL(ssize_t, pwritev, (int, const iovec*, int, off_t));
  auto f = before_write(fd, off, iov_total(iov, cnt));
  return after_write(real_pwritev(fd, iov, cnt, off), f, false);
}
ssize_t pwritev64(int fd, const iovec* iov, int cnt, off_t off) __attribute__((alias("pwritev")));

ssize_t pwritev2(int fd, const iovec* iov, int cnt, off_t off, int flags) {
  REAL(ssize_t, pwritev2, (int, const iovec*, int, off_t, int));
  auto f = before_write(fd, off, iov_total(iov, cnt), (flags & RWF_APPEND) != 0);
  const bool sync = (flags & (RWF_DSYNC | RWF_SYNC)) != 0;
  return after_write(real_pwritev2(fd, iov, cnt, off, flags), f, sync);
}
ssize_t pwritev64v2(int fd, const iovec* iov, int cnt, off_t off, int flags)
    __attribute__((alias("pwritev2")));

ssize_t copy_file_range(int in, off_t* off_in, int out, off_t* off_out, size_t len,
                        unsigned flags) {
  REAL(ssize_t, copy_file_range, (int, off_t*, int, off_t*, size_t, unsigned));
  auto f = before_write(out, off_out != nullptr ? *off_out : -1, len);
  return after_write(real_copy_file_range(in, off_in, out, off_out, len, flags), f, false);
}

int ftruncate(int fd, off_t size) {
  REAL(int, ftruncate, (int, off_t));
  before_truncate(fd, fd_facts(fd), size);
  return real_ftruncate(fd, size);
}
int ftruncate64(int fd, off_t size) __attribute__((alias("ftruncate")));

int truncate(const char* path, off_t size) {
  REAL(int, truncate, (const char*, off_t));
  if (shim_active()) {
    int fd = real::open(path, O_RDONLY | O_CLOEXEC, 0);
    if (fd >= 0) {
      before_truncate(fd, fd_facts(fd), size);
      close(fd);
    }
  }
  return real_truncate(path, size);
}
int truncate64(const char* path, off_t size) __attribute__((alias("truncate")));

int fallocate(int fd, int mode, off_t off, off_t len) {
  REAL(int, fallocate, (int, int, off_t, off_t));
  if ((mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE | FALLOC_FL_COLLAPSE_RANGE |
               FALLOC_FL_INSERT_RANGE)) != 0) {
    auto f = fd_facts(fd);  // contents change: keep the whole tail from `off`
    if (f.in_scope && !f.directory && off < f.size)
      append_image(Op::write, fd, f, off, static_cast<std::uint64_t>(f.size - off),
                   static_cast<std::uint64_t>(f.size - off));
  } else if ((mode & FALLOC_FL_KEEP_SIZE) == 0) {
    auto f = fd_facts(fd);
    if (off + len > f.size) before_truncate(fd, f, off + len);
  }
  return real_fallocate(fd, mode, off, len);
}
int fallocate64(int fd, int mode, off_t off, off_t len) __attribute__((alias("fallocate")));

int posix_fallocate(int fd, off_t off, off_t len) {
  REAL(int, posix_fallocate, (int, off_t, off_t));
  auto f = fd_facts(fd);
  if (off + len > f.size) before_truncate(fd, f, off + len);
  return real_posix_fallocate(fd, off, len);
}
int posix_fallocate64(int fd, off_t off, off_t len) __attribute__((alias("posix_fallocate")));

int fsync(int fd) {
  REAL(int, fsync, (int));
  int r = real_fsync(fd);
  if (r == 0) after_sync(fd_facts(fd), false);
  return r;
}

int fdatasync(int fd) {
  REAL(int, fdatasync, (int));
  int r = real_fdatasync(fd);
  if (r == 0) after_sync(fd_facts(fd), true);
  return r;
}

int syncfs(int fd) {
  REAL(int, syncfs, (int));
  int r = real_syncfs(fd);
  if (r == 0 && shim_active()) append({.op = Op::sync_all});
  return r;
}

void sync() {
  REAL(void, sync, ());
  real_sync();
  if (shim_active()) append({.op = Op::sync_all});
}

// Promises nothing about durability (its man page): journalled for the report only.
int sync_file_range(int fd, off_t off, off_t n, unsigned flags) {
  REAL(int, sync_file_range, (int, off_t, off_t, unsigned));
  int r = real_sync_file_range(fd, off, n, flags);
  auto f = fd_facts(fd);
  if (r == 0 && f.in_scope) append({.op = Op::nondurable, .dev = f.dev, .ino = f.ino});
  return r;
}

void* mmap(void* addr, size_t len, int prot, int flags, int fd, off_t off) {
  REAL(void*, mmap, (void*, size_t, int, int, int, off_t));
  FdFacts f;
  if ((prot & PROT_WRITE) != 0 && (flags & MAP_SHARED) != 0 && fd >= 0) f = fd_facts(fd);
  if (f.in_scope && !f.directory) append_image(Op::map_image, fd, f, off, len, len);
  void* p = real_mmap(addr, len, prot, flags, fd, off);
  if (p != MAP_FAILED && f.in_scope && !f.directory) {
    std::lock_guard lk(g_maps_mu);
    maps().push_back({static_cast<char*>(p), len, f, off});
  }
  return p;
}
void* mmap64(void* addr, size_t len, int prot, int flags, int fd, off_t off)
    __attribute__((alias("mmap")));

int munmap(void* addr, size_t len) {
  REAL(int, munmap, (void*, size_t));
  if (shim_active()) {
    std::lock_guard lk(g_maps_mu);
    auto& m = maps();
    std::erase_if(m, [&](const Mapping& x) { return x.addr == addr && x.len == len; });
  }
  return real_munmap(addr, len);
}

// msync(MS_SYNC) makes the range durable; its new contents are the baseline from now on.
int msync(void* addr, size_t len, int flags) {
  REAL(int, msync, (void*, size_t, int));
  int r = real_msync(addr, len, flags);
  if (r != 0 || (flags & MS_SYNC) == 0 || !shim_active()) return r;
  std::lock_guard lk(g_maps_mu);
  for (const auto& m : maps()) {
    auto* a = static_cast<char*>(addr);
    if (a < m.addr || a >= m.addr + m.len) continue;
    append({.op = Op::sync_file, .dev = m.file.dev, .ino = m.file.ino});
    append({.op = Op::map_image,
            .dev = m.file.dev,
            .ino = m.file.ino,
            .offset = static_cast<std::uint64_t>(m.offset),
            .len = m.len,
            .old_size = static_cast<std::uint64_t>(m.file.size),
            .payload = m.addr,
            .payload_len = m.len});
  }
  return r;
}

}  // extern "C"
