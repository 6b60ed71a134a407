#include "crashkit/harness/notify_receiver.hpp"

#include <fmt/format.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <limits>

#include "crashkit/crash_protocol.hpp"

namespace crashkit {
namespace {

bool fill_address(const std::string& address, sockaddr_un& sa, socklen_t& len) {
  sa = {};
  sa.sun_family = AF_UNIX;
  if (address.size() >= sizeof(sa.sun_path)) return false;
  std::memcpy(sa.sun_path, address.data(), address.size());
  if (address[0] == '@') {
    sa.sun_path[0] = '\0';
    len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address.size());
  } else {
    len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address.size() + 1);
  }
  return true;
}

}  // namespace

Result<NotifyReceiver> NotifyReceiver::bind(const std::string& requested, NotifyAccess access,
                                            std::optional<uid_t> owner) {
  if (requested.empty()) return usage_error("notify socket: empty address");
  std::string address = requested;
  sockaddr_un sa{};
  socklen_t len = 0;
  if (!fill_address(address, sa, len)) {
    // sockaddr_un holds 107 bytes of path; a deep run dir does not fit. Abstract names have
    // the same limit but we choose them, so they always fit.
    static std::atomic<unsigned> counter{0};
    address = fmt::format("@crashkit/{}/{}", getpid(), counter++);
    fill_address(address, sa, len);
  }
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    return harness_error(fmt::format("notify socket: socket() failed: {}", std::strerror(errno)));
  int one = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof one) != 0) {
    int e = errno;
    close(fd);
    return harness_error(fmt::format("notify socket: SO_PASSCRED failed: {}", std::strerror(e)));
  }
  // Large enough that a burst of datagrams (watchdog pings, crash-point reports) is not lost
  // while the harness is busy elsewhere; failure only leaves the default.
  int rcvbuf = 1 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  std::string path;
  if (address[0] != '@') {
    path = address;
    unlink(path.c_str());  // a stale socket from an earlier run in the same run dir
  }
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), len) != 0) {
    int e = errno;
    close(fd);
    return e == EACCES || e == ENOENT || e == EROFS
               ? usage_error(fmt::format("notify socket {}: cannot bind: {}; choose a writable "
                                         "--run-dir",
                                         address, std::strerror(e)))
               : harness_error(
                     fmt::format("notify socket {}: cannot bind: {}", address, std::strerror(e)));
  }
  if (!path.empty() && owner && chown(path.c_str(), *owner, static_cast<gid_t>(-1)) != 0) {
    int e = errno;
    close(fd);
    unlink(path.c_str());
    return harness_error(fmt::format("notify socket {}: chown failed: {}", path, std::strerror(e)));
  }
  return NotifyReceiver(fd, address, path, access);
}

NotifyReceiver::NotifyReceiver(NotifyReceiver&& o) noexcept
    : on_message(std::move(o.on_message)),
      fd_(o.fd_),
      address_(std::move(o.address_)),
      path_(std::move(o.path_)),
      access_(o.access_),
      started_pid_(o.started_pid_),
      state_(std::move(o.state_)),
      counters_(o.counters_) {
  o.fd_ = -1;
  o.path_.clear();
}

NotifyReceiver& NotifyReceiver::operator=(NotifyReceiver&& o) noexcept {
  if (this != &o) {
    this->~NotifyReceiver();
    new (this) NotifyReceiver(std::move(o));
  }
  return *this;
}

NotifyReceiver::~NotifyReceiver() {
  if (fd_ >= 0) close(fd_);
  if (!path_.empty()) unlink(path_.c_str());
}

bool NotifyReceiver::sender_allowed(pid_t sender) const {
  if (access_ == NotifyAccess::all) return true;
  return sender == started_pid_ || (state_.main_pid && sender == *state_.main_pid);
}

namespace {

// About 31 years: far beyond any test, and the clock plus this never overflows.
constexpr std::uint64_t kExtendTimeoutMaxUsec = 1'000'000'000'000'000;
// systemd's USEC_INFINITY.
constexpr std::uint64_t kUsecInfinity = std::numeric_limits<std::uint64_t>::max();

// `at` plus `us` microseconds, or time_point::max() (never) where that is past what the clock
// holds, as systemd's usec_add() saturates at USEC_INFINITY (a timer there never fires).
Clock::time_point saturating_after(Clock::time_point at, std::uint64_t us) {
  const auto room =
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::time_point::max() - at).count();
  if (room <= 0 || us >= static_cast<std::uint64_t>(room)) return Clock::time_point::max();
  return at + std::chrono::microseconds(static_cast<std::int64_t>(us));
}

// EXTEND_TIMEOUT_USEC=, as systemd's service_extend_timeout() (src/core/service.c) takes it: 0
// and USEC_INFINITY are ignored (!timestamp_is_set(): infinity does NOT mean "no deadline");
// any other value moves the deadline to now + value, never earlier than it already is (each
// message extends anew: a daemon sends it periodically while a long start goes on), and a sum
// past what the clock holds saturates to no deadline at all.
void apply_extend_timeout(std::string_view value, NotifyState& state) {
  auto us = parse_number<std::uint64_t>(value);
  if (!us || *us == 0 || *us == kUsecInfinity) return;
  state.extend_timeout = std::chrono::microseconds(std::min(*us, kExtendTimeoutMaxUsec));
  auto until = saturating_after(Clock::now(), *us);
  if (!state.extended_until || *state.extended_until < until) state.extended_until = until;
}

}  // namespace

void apply_notify_message(const NotifyMessage& m, NotifyState& state) {
  for (const auto& [key, value] : m.fields) {
    if (key == "READY" && value == "1") {
      state.ready = true;
      state.reloading = false;
      state.ready_at = Clock::now();
    } else if (key == "STOPPING" && value == "1") {
      state.stopping = true;
    } else if (key == "RELOADING" && value == "1") {
      state.reloading = true;
      state.ready = false;
    } else if (key == "STATUS") {
      state.status = value;
    } else if (key == "MAINPID") {
      if (auto pid = parse_number<pid_t>(value); pid && *pid > 0) state.main_pid = *pid;
    } else if (key == "ERRNO") {
      if (auto e = parse_number<int>(value)) state.errno_value = *e;
    } else if (key == "WATCHDOG") {
      if (value == "1") ++state.watchdog_pings;
      if (value == "trigger") state.watchdog_trigger = true;
    } else if (key == "EXTEND_TIMEOUT_USEC") {
      apply_extend_timeout(value, state);
    } else if (key == "X_CRASHKIT_FIRED") {
      state.fired.push_back(value);
    } else if (key.starts_with("X_")) {
      state.extensions[key] = value;
    }
  }
}

void NotifyReceiver::apply(pid_t sender, const NotifyMessage& m) {
  apply_notify_message(m, state_);
  ++counters_.accepted;
  if (on_message) on_message(sender, m);
}

int NotifyReceiver::drain() {
  int accepted = 0;
  char buf[kNotifyDatagramMax + 1];
  // Room for credentials plus the most fds one datagram can carry (SCM_MAX_FD = 253).
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(ucred)) + CMSG_SPACE(sizeof(int) * 253)];
  while (true) {
    iovec iov{buf, sizeof buf};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n = recvmsg(fd_, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC | MSG_TRUNC);
    if (n < 0) {
      if (errno == EINTR) continue;
      break;  // EAGAIN: drained
    }
    const ucred* cred = nullptr;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET) continue;
      if (c->cmsg_type == SCM_CREDENTIALS && c->cmsg_len == CMSG_LEN(sizeof(ucred))) {
        cred = reinterpret_cast<const ucred*>(CMSG_DATA(c));
      } else if (c->cmsg_type == SCM_RIGHTS) {
        // We are not a file-descriptor store: close what was passed so nothing leaks.
        std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (std::size_t i = 0; i < count; ++i) {
          int passed;
          std::memcpy(&passed, CMSG_DATA(c) + i * sizeof(int), sizeof passed);
          close(passed);
          ++counters_.fds_closed;
        }
      }
    }
    if (cred == nullptr || cred->pid <= 0) {
      ++counters_.no_credentials;
      continue;
    }
    if ((msg.msg_flags & MSG_TRUNC) != 0 || static_cast<std::size_t>(n) > kNotifyDatagramMax) {
      ++counters_.oversized;
      continue;
    }
    if (!sender_allowed(cred->pid)) {
      ++counters_.foreign_sender;
      continue;
    }
    auto parsed = parse_notify_datagram(std::string_view(buf, static_cast<std::size_t>(n)));
    if (!parsed) {
      ++counters_.malformed;
      continue;
    }
    apply(cred->pid, *parsed);
    ++accepted;
  }
  return accepted;
}

NotifyReceiver::Wake NotifyReceiver::wait(const std::function<bool(const NotifyState&)>& done,
                                          Clock::time_point deadline, std::span<const int> watch) {
  std::vector<pollfd> fds;
  fds.push_back({fd_, POLLIN, 0});
  for (int w : watch) fds.push_back({w, POLLIN, 0});
  // systemd extends the start timeout; a running daemon's waits (the delay of a SIGKILL, a
  // workload's timeout) are not the daemon's to stretch.
  auto extend = [&] {
    if (state_.extended_until && !state_.ready)
      deadline = std::max(deadline, *state_.extended_until);
  };
  // The last poll's count: its revents say whether a watched fd turned readable, so the fds are
  // not probed again before each sleep (a wait runs twice per cycle of a kill loop).
  int n = 0;
  while (true) {
    drain();
    if (done(state_)) return Wake::condition;
    extend();
    auto now = Clock::now();
    // Past the deadline, one look first: a daemon that died is that, not a timeout.
    if (n <= 0 && now >= deadline) n = poll(fds.data(), fds.size(), 0);
    for (std::size_t i = 1; n > 0 && i < fds.size(); ++i) {
      if (fds[i].revents == 0) continue;
      drain();  // the daemon may have said something just before it died
      return done(state_) ? Wake::condition : Wake::watched_fd;
    }
    if (now >= deadline) return Wake::timeout;
    n = poll(fds.data(), fds.size(), poll_timeout_ms(deadline - now));
    if (n < 0 && errno != EINTR) return Wake::timeout;
  }
}

}  // namespace crashkit
