// Internal: pidfd_open(2), which glibc 2.36 does not wrap. Not installed.
#pragma once

#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

namespace crashkit {

// A pidfd for `pid` (O_CLOEXEC by the kernel), or -1 with errno set.
inline int open_pidfd(pid_t pid) {
  return static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
}

}  // namespace crashkit
