// ExitStatus: how a process ended, as a value (exited with a code, killed by a signal,
// or killed with a core dump). Built from a waitpid() status word.
//
//   ExitStatus s = ExitStatus::from_wait_status(status);
//   if (s.killed_by(SIGKILL)) ...;  fmt::print("{}", s.describe());  // "killed by SIGKILL"
#pragma once

#include <string>

namespace crashkit {

class ExitStatus {
 public:
  // unknown: the process is gone but its status went to another parent (a daemon's forked
  // MAINPID that was never our child).
  enum class Kind { exited, signaled, core_dumped, unknown };

  static ExitStatus exited(int code) { return {Kind::exited, code}; }
  static ExitStatus unknown() { return {Kind::unknown, 0}; }
  static ExitStatus signaled(int sig, bool core = false) {
    return {core ? Kind::core_dumped : Kind::signaled, sig};
  }
  static ExitStatus from_wait_status(int wstatus);

  Kind kind() const { return kind_; }
  // Exit code for Kind::exited, signal number for signaled/core_dumped, 0 for unknown.
  int value() const { return value_; }
  bool exited_with(int code) const { return kind_ == Kind::exited && value_ == code; }
  bool killed_by(int sig) const {
    return (kind_ == Kind::signaled || kind_ == Kind::core_dumped) && value_ == sig;
  }
  bool success() const { return exited_with(0); }
  // "exited with code 3", "killed by SIGKILL", "killed by SIGSEGV (core dumped)",
  // "ended (status not ours to collect)".
  std::string describe() const;

  friend bool operator==(const ExitStatus&, const ExitStatus&) = default;

 private:
  ExitStatus(Kind k, int v) : kind_(k), value_(v) {}
  Kind kind_;
  int value_;
};

// "SIGKILL" for 9; "signal 42" for numbers without a name.
std::string signal_name(int sig);

}  // namespace crashkit
