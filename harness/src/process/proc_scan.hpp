// Internal: reading /proc without allocating, for the sentinel (a forked copy of the harness that
// never execs) and for Containment. Async-signal-safe and fork-safe: raw syscalls into buffers the
// caller owns, no malloc, no locks, no stdio.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>

namespace crashkit::proc_scan {

// Writes "<prefix><n><suffix>" into out (size >= 64 + strlen(prefix) + strlen(suffix)).
inline char* format_path(char* out, const char* prefix, long n, const char* suffix) {
  char digits[24];
  int len = 0;
  do {
    digits[len++] = static_cast<char>('0' + n % 10);
    n /= 10;
  } while (n > 0);
  char* p = out;
  for (const char* s = prefix; *s != '\0'; ++s) *p++ = *s;
  while (len > 0) *p++ = digits[--len];
  for (const char* s = suffix; *s != '\0'; ++s) *p++ = *s;
  *p = '\0';
  return out;
}

// Does /proc/<pid>/environ hold an entry that starts with the `len` bytes of `needle` (a prefix
// such as "CRASHKIT_CELL=123.", or a whole entry with its NUL)? Reads at most `size` bytes of it
// into `buf`; a zombie's or a kernel thread's environ is empty.
inline bool environ_has(pid_t pid, const char* needle, std::size_t len, char* buf,
                        std::size_t size) {
  char path[64];
  int fd = ::open(format_path(path, "/proc/", pid, "/environ"), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  std::size_t got = 0;
  while (got < size) {
    ssize_t n = ::read(fd, buf + got, size - got);
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  ::close(fd);
  for (std::size_t start = 0; start + len <= got;) {
    if (std::memcmp(buf + start, needle, len) == 0) return true;
    const void* nul = std::memchr(buf + start, '\0', got - start);
    if (nul == nullptr) break;
    start = static_cast<std::size_t>(static_cast<const char*>(nul) - buf) + 1;
  }
  return false;
}

// Calls fn(pid) for every numeric entry of /proc. `buf` holds getdents64 records.
template <typename Fn>
void for_each_pid(Fn fn, char* buf, std::size_t size) {
  int dir = ::open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return;
  while (true) {
    long n = ::syscall(SYS_getdents64, dir, buf, size);
    if (n <= 0) break;
    for (long off = 0; off < n;) {
      auto* d = reinterpret_cast<struct dirent64*>(buf + off);
      off += d->d_reclen;
      long pid = 0;
      const char* s = d->d_name;
      for (; *s >= '0' && *s <= '9'; ++s) pid = pid * 10 + (*s - '0');
      if (*s == '\0' && s != d->d_name) fn(static_cast<pid_t>(pid));
    }
  }
  ::close(dir);
}

inline long now_ms() {
  timespec t{};
  ::clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000L + t.tv_nsec / 1000000L;
}

// Waits until the cgroup whose cgroup.events file is `events` has no live process left
// ("populated 0"), up to timeout_ms; the kernel signals each change with POLLPRI. True if empty.
inline bool wait_unpopulated(const char* events, int timeout_ms) {
  int fd = ::open(events, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool empty = false;
  const long deadline = now_ms() + timeout_ms;
  while (true) {
    char buf[256];
    ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    if (n > 0 && std::strstr(buf, "populated 0") != nullptr) {
      empty = true;
      break;
    }
    if (now_ms() >= deadline) break;
    pollfd p{fd, POLLPRI, 0};
    ::poll(&p, 1, 10);  // the change event, or a re-read every 10 ms
  }
  ::close(fd);
  return empty;
}

}  // namespace crashkit::proc_scan
