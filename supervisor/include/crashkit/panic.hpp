// The panic hook: on std::terminate or a fatal signal (SIGSEGV, SIGBUS, SIGFPE, SIGILL,
// SIGABRT) write the thread name, the cause and a backtrace to stderr with async-signal-safe
// calls only, then re-raise with the default action so the exit status and core stay right.
//
//   int main() { crashkit::install_panic_hook(); ... }
#pragma once

namespace crashkit {

// Installs the terminate handler and the fatal-signal handlers (on an alternate stack, so a
// stack overflow is reported too). Call once, early, from the main thread.
void install_panic_hook();

}  // namespace crashkit
