// clone3(CLONE_INTO_CGROUP | CLONE_VM | CLONE_VFORK) with a trampoline; see the header for why.
#include "process/clone_into_cgroup.hpp"

#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include <cerrno>
#include <cstdint>

namespace crashkit {
namespace {

// struct clone_args of <linux/sched.h> (CLONE_ARGS_SIZE_VER2), spelled out here because that
// header's CLONE_* macros collide with glibc's <sched.h>.
struct CloneArgs {
  std::uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid,
      set_tid_size, cgroup;
};
static_assert(sizeof(CloneArgs) == 88, "CLONE_ARGS_SIZE_VER2");

constexpr std::uint64_t kCloneVm = 0x100, kCloneVfork = 0x4000, kClonePidfd = 0x1000,
                        kCloneIntoCgroup = 0x200000000ULL;

// The child's stack: one per thread that spawns (the caller is suspended while the child runs,
// so a thread never needs two), with a PROT_NONE guard page below it. Unmapped at thread exit.
class ChildStack {
 public:
  static constexpr std::size_t kSize = 64 << 10, kGuard = 4 << 10;
  ~ChildStack() {
    if (base_ != nullptr) ::munmap(base_, kSize + kGuard);
  }
  // The stack's top (16-byte aligned), or nullptr with errno set.
  char* top() {
    if (base_ == nullptr) {
      void* m = ::mmap(nullptr, kSize + kGuard, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
      if (m == MAP_FAILED) return nullptr;
      ::mprotect(m, kGuard, PROT_NONE);
      base_ = static_cast<char*>(m);
    }
    return base_ + kSize + kGuard;
  }

 private:
  char* base_ = nullptr;
};

}  // namespace
}  // namespace crashkit

#if defined(__x86_64__)
// long crashkit_clone3_trampoline(CloneArgs* args, size_t size, CloneEntry entry, void* arg)
// Parent: returns clone3's result. Child (rax == 0, on the new stack, every other register as
// the parent had it except rcx/r11): calls entry(arg) and exits with its result; entry is
// expected never to return. r8/r9 carry entry/arg across the syscall (the kernel preserves
// them); the frame pointer is cleared so unwinders stop here.
extern "C" long crashkit_clone3_trampoline(void* args, unsigned long size, int (*entry)(void*),
                                           void* arg);
asm(R"(
    .text
    .p2align 4
    .type crashkit_clone3_trampoline, @function
crashkit_clone3_trampoline:
    .cfi_startproc
    mov %rdx, %r8
    mov %rcx, %r9
    mov $435, %eax
    syscall
    test %rax, %rax
    jz 1f
    ret
1:
    .cfi_undefined rip
    xor %ebp, %ebp
    and $-16, %rsp
    mov %r9, %rdi
    call *%r8
    mov %eax, %edi
    mov $60, %eax
    syscall
    hlt
    .cfi_endproc
    .size crashkit_clone3_trampoline, .-crashkit_clone3_trampoline
)");
#endif

namespace crashkit {

pid_t clone_vfork_into_cgroup(int cgroup_dir_fd, int* pidfd, CloneEntry entry, void* arg) {
#if defined(__x86_64__) && !defined(__SANITIZE_THREAD__)
  // (ThreadSanitizer turns vfork into fork and cannot follow a CLONE_VM child at all.)
  static thread_local ChildStack stack;
  char* top = stack.top();
  if (top == nullptr) return -1;
  CloneArgs a{};
  a.flags = kCloneVm | kCloneVfork | kClonePidfd | kCloneIntoCgroup;
  a.pidfd = reinterpret_cast<std::uintptr_t>(pidfd);
  a.exit_signal = SIGCHLD;
  a.stack = reinterpret_cast<std::uintptr_t>(top - ChildStack::kSize);
  a.stack_size = ChildStack::kSize;
  a.cgroup = static_cast<std::uint64_t>(cgroup_dir_fd);
  long r = crashkit_clone3_trampoline(&a, sizeof a, entry, arg);
  if (r < 0) {
    errno = static_cast<int>(-r);
    return -1;
  }
  return static_cast<pid_t>(r);
#else
  (void)cgroup_dir_fd, (void)pidfd, (void)entry, (void)arg;
  errno = ENOSYS;
  return -1;
#endif
}

bool clone_into_cgroup_unsupported(int err) {
  return err == ENOSYS || err == E2BIG || err == EINVAL || err == EPERM;
}

}  // namespace crashkit
