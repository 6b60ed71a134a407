// The next definitions of the interposed libc functions (dlsym RTLD_NEXT), resolved once and
// cached. The shim calls these for its own I/O and to perform the user's calls.
#pragma once

#include <dlfcn.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <cstdio>

namespace crashkit::powerloss::real {

template <typename Fn>
Fn next(const char* name) {
  void* p = dlsym(RTLD_NEXT, name);
  if (p == nullptr) {
    std::fprintf(stderr, "crashkit powerloss: libc has no %s\n", name);
    _Exit(87);
  }
  return reinterpret_cast<Fn>(p);
}

#define CRASHKIT_REAL(ret, name, params)         \
  inline ret(*name##_fn()) params {              \
    static auto fn = next<ret(*) params>(#name); \
    return fn;                                   \
  }

CRASHKIT_REAL(int, open, (const char*, int, ...))
CRASHKIT_REAL(int, openat, (int, const char*, int, ...))
CRASHKIT_REAL(ssize_t, write, (int, const void*, size_t))
CRASHKIT_REAL(int, ftruncate, (int, off_t))
CRASHKIT_REAL(ssize_t, pwritev, (int, const iovec*, int, off_t))
#undef CRASHKIT_REAL

inline int open(const char* path, int flags, mode_t mode) {
  return open_fn()(path, flags, mode);
}
inline ssize_t write(int fd, const void* buf, size_t n) {
  return write_fn()(fd, buf, n);
}
inline int ftruncate(int fd, off_t size) {
  return ftruncate_fn()(fd, size);
}

}  // namespace crashkit::powerloss::real
