// NotifyReceiver: the harness end of a daemon's NOTIFY_SOCKET. Binds a private AF_UNIX
// datagram socket (a path, or "@name" for an abstract one) with SO_PASSCRED, and folds the
// datagrams of accepted senders into a NotifyState. Bad datagrams are counted, never fatal.
//
//   auto r = NotifyReceiver::bind(run_dir / "notify.sock");
//   r->set_main_pid(child.pid());  // env: NOTIFY_SOCKET=r->address()
//   auto w = r->wait([](const NotifyState& s) { return s.ready; }, deadline, {child.pidfd()});
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "crashkit/harness/duration.hpp"
#include "crashkit/harness/notify_message.hpp"
#include "crashkit/harness/result.hpp"

namespace crashkit {

// Which senders are believed (systemd's NotifyAccess=): the started pid or the announced
// MAINPID, or any process.
enum class NotifyAccess { main, all };

struct NotifyState {
  bool ready = false;
  bool stopping = false;
  bool reloading = false;
  std::string status;
  std::optional<pid_t> main_pid;  // last MAINPID= accepted
  std::optional<int> errno_value;
  std::uint64_t watchdog_pings = 0;
  bool watchdog_trigger = false;
  // EXTEND_TIMEOUT_USEC=, as systemd reads it (see apply_notify_message): the last value taken
  // (at most 10^15 us), and the deadline the extensions set, the latest arrival + value, never
  // moved earlier; time_point::max() when that is past what the clock holds: no deadline.
  std::optional<Duration> extend_timeout;
  std::optional<Clock::time_point> extended_until;
  std::vector<std::string> fired;                 // X_CRASHKIT_FIRED= values, in order
  std::map<std::string, std::string> extensions;  // other X_* keys, last value
  std::optional<Clock::time_point> ready_at;      // when READY=1 was read
};

// Folds one believed message into `state`, as the receiver does with each datagram it accepts.
// A value that does not parse (MAINPID=abc) is ignored, as systemd ignores it.
void apply_notify_message(const NotifyMessage& message, NotifyState& state);

struct NotifyCounters {
  std::uint64_t accepted = 0;
  std::uint64_t no_credentials = 0;
  std::uint64_t oversized = 0;
  std::uint64_t malformed = 0;  // embedded NUL, bad lines
  std::uint64_t foreign_sender = 0;
  std::uint64_t fds_closed = 0;  // SCM_RIGHTS fds (FDSTORE=) we do not keep
  std::uint64_t rejected() const { return no_credentials + oversized + malformed + foreign_sender; }
};

class NotifyReceiver {
 public:
  // `address`: a filesystem path, or "@name" for the abstract namespace. A path longer
  // than sockaddr_un allows falls back to an abstract name (see address()). `owner`: chown
  // the socket so a daemon running as that uid may send to it.
  static Result<NotifyReceiver> bind(const std::string& address,
                                     NotifyAccess access = NotifyAccess::main,
                                     std::optional<uid_t> owner = std::nullopt);
  NotifyReceiver(NotifyReceiver&& other) noexcept;
  NotifyReceiver& operator=(NotifyReceiver&& other) noexcept;
  NotifyReceiver(const NotifyReceiver&) = delete;
  NotifyReceiver& operator=(const NotifyReceiver&) = delete;
  ~NotifyReceiver();  // closes the socket and unlinks its path

  // The value for NOTIFY_SOCKET.
  const std::string& address() const { return address_; }
  int fd() const { return fd_; }

  // The pid the harness started; with NotifyAccess::main only it (or its MAINPID) is heard.
  void set_main_pid(pid_t pid) { started_pid_ = pid; }
  // Forget the state of the previous start (counters are kept).
  void reset_state() { state_ = NotifyState{}; }

  // Reads every pending datagram without blocking; returns how many were accepted.
  int drain();

  enum class Wake { condition, watched_fd, timeout };
  // Waits (poll, no sleeping) until `done(state())` holds, one of `watch` is readable (e.g.
  // a pidfd: the daemon died) or `deadline` passes. Before READY=1, EXTEND_TIMEOUT_USEC=
  // moves the deadline out to `extended_until`, as systemd extends its start timeout; the waits
  // of a running daemon keep theirs. The condition is checked first, so a finished wait
  // returns at once.
  Wake wait(const std::function<bool(const NotifyState&)>& done, Clock::time_point deadline,
            std::span<const int> watch = {});

  const NotifyState& state() const { return state_; }
  const NotifyCounters& counters() const { return counters_; }

  // Optional observer of every accepted message (verbose logs, tests). Runs on the thread
  // that calls drain()/wait().
  std::function<void(pid_t sender, const NotifyMessage&)> on_message;

 private:
  NotifyReceiver(int fd, std::string address, std::string path, NotifyAccess access)
      : fd_(fd), address_(std::move(address)), path_(std::move(path)), access_(access) {}
  void apply(pid_t sender, const NotifyMessage& m);
  bool sender_allowed(pid_t sender) const;

  int fd_ = -1;
  std::string address_;
  std::string path_;  // unlinked on destruction; empty for abstract sockets
  NotifyAccess access_;
  pid_t started_pid_ = -1;
  NotifyState state_;
  NotifyCounters counters_;
};

}  // namespace crashkit
