// Internal: start a child directly inside a cgroup, clone3(CLONE_INTO_CGROUP), with vfork
// semantics (CLONE_VM | CLONE_VFORK: the caller is suspended until the child execs or exits).
// Not installed.
//
//   pid_t pid = clone_vfork_into_cgroup(cgroup_dir_fd, &pidfd, entry, &plan);
//   if (pid < 0 && clone_into_cgroup_unsupported(errno)) { /* vfork + cgroup.procs instead */ }
//
// Why: joining a cgroup by writing cgroup.procs after fork takes the kernel's threadgroup write
// lock (an RCU grace period), about 80 us per spawn on a 2-core VM, 3% of a kill-restart cycle
// (bench/run_cycles); a child created inside the cgroup never migrates. glibc 2.36 does not wrap
// clone3, and a CLONE_VM child needs its own stack, so a small per-architecture trampoline
// calls `entry(arg)` on that stack. x86_64 only; elsewhere this returns -1 with ENOSYS and the
// caller falls back.
//
// `entry` runs in the child, in the caller's memory, on a per-thread stack: it must be
// async-signal-safe, allocation-free, uninstrumented by sanitizers, and end in execve or _exit.
// The caller blocks every signal around the call (as for vfork).
#pragma once

#include <sys/types.h>

namespace crashkit {

using CloneEntry = int (*)(void*);

// Marks `entry` and what it calls: they run on a stack AddressSanitizer does not know.
#define CRASHKIT_CHILD_SIDE __attribute__((no_sanitize_address))

// The child's pid (and a pidfd for it in *pidfd, O_CLOEXEC), or -1 with errno set.
pid_t clone_vfork_into_cgroup(int cgroup_dir_fd, int* pidfd, CloneEntry entry, void* arg);

// errno values from clone_vfork_into_cgroup that mean "this kernel, sandbox or cgroup cannot do
// it" (ENOSYS: no clone3 or a seccomp filter; E2BIG/EINVAL: no CLONE_INTO_CGROUP before 5.7),
// as opposed to a spawn that failed for a reason the fallback would hit too.
bool clone_into_cgroup_unsupported(int err);

}  // namespace crashkit
