// Panic reporting. Contract: the signal handler uses only write(2), prctl(PR_GET_NAME),
// backtrace()/backtrace_symbols_fd() (preloaded at install so the first call does not run
// the dynamic loader inside the handler), sigaction and raise. The terminate handler is not a
// signal handler but keeps to the same calls, plus what() of the current exception.
#include "crashkit/panic.hpp"

#include <execinfo.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cstdlib>
#include <exception>
#include <initializer_list>

#include "altstack.hpp"

namespace crashkit {
namespace {

void put(const char* s) {
  ssize_t ignored = write(2, s, strlen(s));
  (void)ignored;
}

void put_header(const char* cause) {
  char name[17] = {0};
  prctl(PR_GET_NAME, name, 0, 0, 0);
  put("panic: thread '");
  put(name);
  put("': ");
  put(cause);
  put("\n");
}

void put_backtrace() {
  void* frames[64];
  int n = backtrace(frames, 64);
  put("backtrace:\n");
  backtrace_symbols_fd(frames, n, 2);
}

void on_fatal_signal(int sig, siginfo_t*, void*) {
  const char* abbrev = sigabbrev_np(sig);
  char cause[48] = "fatal signal SIG";
  strncat(cause, abbrev != nullptr ? abbrev : "?", sizeof cause - strlen(cause) - 1);
  put_header(cause);
  put_backtrace();
  // SA_RESETHAND restored the default action: re-raise so the status (and core) are right.
  raise(sig);
}

void on_terminate() {
  put_header("std::terminate");
  if (auto e = std::current_exception()) {
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      put("uncaught exception: ");
      put(ex.what());
      put("\n");
    } catch (...) {
      put("uncaught exception of unknown type\n");
    }
  }
  put_backtrace();
  signal(SIGABRT, SIG_DFL);
  abort();
}

}  // namespace

void install_panic_hook() {
  void* warm[1];
  backtrace(warm, 1);  // loads libgcc's unwinder now, not inside a signal handler
  static char altstack[64 * 1024];
  detail::install_altstack(altstack, sizeof altstack);  // keeps a sanitizer's own
  std::set_terminate(on_terminate);
  struct sigaction sa {};
  sa.sa_sigaction = on_fatal_signal;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESETHAND;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT}) sigaction(sig, &sa, nullptr);
}

}  // namespace crashkit
