// An alternate signal stack for the calling thread, so the panic hook's SA_ONSTACK handlers can
// report a stack overflow. Installed only if the thread has none: a sanitizer runtime installs
// its own (and unmaps it at thread exit), and it must be kept. Internal to the supervisor.
#pragma once

#include <signal.h>

#include <cstddef>

namespace crashkit::detail {

// Installs [memory, memory + size) as this thread's alternate stack unless it has one.
// True if installed (then the caller owns the removal: see ScopedAltStack).
inline bool install_altstack(char* memory, std::size_t size) {
  stack_t old{};
  if (sigaltstack(nullptr, &old) != 0 || (old.ss_flags & SS_DISABLE) == 0) return false;
  stack_t ss{};
  ss.ss_sp = memory;
  ss.ss_size = size;
  return sigaltstack(&ss, nullptr) == 0;
}

// A worker host thread's alternate stack, removed when the thread leaves its host loop.
class ScopedAltStack {
 public:
  ScopedAltStack() : installed_(install_altstack(memory_, sizeof memory_)) {}
  ~ScopedAltStack() {
    if (!installed_) return;
    stack_t off{};
    off.ss_flags = SS_DISABLE;
    sigaltstack(&off, nullptr);
  }
  ScopedAltStack(const ScopedAltStack&) = delete;
  ScopedAltStack& operator=(const ScopedAltStack&) = delete;

 private:
  static thread_local inline char memory_[64 * 1024];
  bool installed_;
};

}  // namespace crashkit::detail
