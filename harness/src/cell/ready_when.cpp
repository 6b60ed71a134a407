// Readiness: --ready-when probes (tcp:, unix:, cmd:) for daemons without sd_notify, and
// CellRun::await_ready, which waits for READY=1 or the probe and says why a start failed.
#include "cell/ready_when.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "cell/cell_run.hpp"
#include "crashkit/crash_protocol.hpp"  // parse_number, printable_text

namespace crashkit {
namespace {

// Connects `fd` (non-blocking) to `addr`, waiting up to 200 ms; 0 or an errno.
int connect_within(int fd, const sockaddr* addr, socklen_t len) {
  if (::connect(fd, addr, len) == 0) return 0;
  if (errno != EINPROGRESS) return errno;
  pollfd p{fd, POLLOUT, 0};
  if (::poll(&p, 1, 200) <= 0) return ETIMEDOUT;
  int err = 0;
  socklen_t n = sizeof err;
  ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &n);
  return err;
}

bool connect_unix(const std::string& path, std::string* why) {
  sockaddr_un sa{};
  if (path.size() >= sizeof sa.sun_path) {
    *why = "socket path too long";
    return false;
  }
  sa.sun_family = AF_UNIX;
  std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return *why = std::strerror(errno), false;
  int e = connect_within(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa);
  ::close(fd);
  if (e != 0) *why = std::strerror(e);
  return e == 0;
}

bool connect_tcp(const std::string& host_port, std::string* why) {
  const auto colon = host_port.rfind(':');
  std::string host = host_port.substr(0, colon), port = host_port.substr(colon + 1);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (int e = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &found); e != 0) {
    *why = gai_strerror(e);
    return false;
  }
  bool up = false;
  for (addrinfo* a = found; a != nullptr && !up; a = a->ai_next) {
    int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
    if (fd < 0) continue;
    int e = connect_within(fd, a->ai_addr, a->ai_addrlen);
    ::close(fd);
    up = e == 0;
    if (!up) *why = std::strerror(e);
  }
  ::freeaddrinfo(found);
  return up;
}

}  // namespace

Result<ReadyWhen> parse_ready_when(std::string_view option, std::string_view text) {
  auto bad = [&](std::string_view what) {
    return usage_error(fmt::format("{} '{}': {}; give tcp:HOST:PORT, unix:PATH or cmd:COMMAND",
                                   option, printable_text(text), what));
  };
  ReadyWhen r;
  const auto colon = text.find(':');
  if (colon == std::string_view::npos) return bad("no kind");
  const std::string_view kind = text.substr(0, colon);
  r.where = std::string(text.substr(colon + 1));
  if (r.where.empty()) return bad("nothing after the kind");
  if (kind == "unix") {
    r.kind = ReadyWhen::Kind::unix_socket;
  } else if (kind == "cmd") {
    r.kind = ReadyWhen::Kind::command;
  } else if (kind == "tcp") {
    const auto last = r.where.rfind(':');
    if (last == std::string::npos || last == 0 || last + 1 == r.where.size())
      return bad("a tcp target is HOST:PORT");
    const std::string port = r.where.substr(last + 1);
    auto n = parse_number<int>(port);
    if (port.find('{') == std::string::npos && (!n || *n < 1 || *n > 65535))
      return bad("the port is a number from 1 to 65535");
  } else {
    return bad("unknown kind");
  }
  return r;
}

bool can_connect(const ReadyWhen& r, std::string* why) {
  return r.kind == ReadyWhen::Kind::unix_socket ? connect_unix(r.where, why)
                                                : connect_tcp(r.where, why);
}

}  // namespace crashkit

// CellRun's side of --ready-when (cell/cell_run.hpp).
namespace crashkit::detail {

Daemon::ReadyWait CellRun::wait_ready_when(Daemon& d) {
  auto parsed = parse_ready_when("--ready-when", *spec_.ready_when);  // validated with the spec
  ready_when_last_.clear();
  ready_when_shown_ = placeholders(last_start_cycle_).apply(*spec_.ready_when);
  if (!parsed) {
    ready_when_last_ = parsed.error().message;
    return {Daemon::Ready::timeout, Duration::zero(), std::nullopt};
  }
  ReadyWhen r = *parsed;
  const int cycle = last_start_cycle_;
  if (r.kind != ReadyWhen::Kind::command) r.where = placeholders(cycle).apply(r.where);
  auto probe = [&] {
    if (r.kind != ReadyWhen::Kind::command) return can_connect(r, &ready_when_last_);
    auto c = run_command(r.where, cycle, fmt::format("ready-when.{}.log", cycle));
    if (c && c->status.success()) return true;
    ready_when_last_ = c ? c->describe() : c.error().message;
    return false;
  };
  return d.wait_ready_by(probe, spec_.ready_timeout);
}

// nullopt when READY came; otherwise why not, one line, quoting the stderr line that explains
// a failed start.
std::optional<std::string> CellRun::await_ready(Daemon& d, Duration* elapsed,
                                                std::optional<ExitStatus>* status) {
  auto w = spec_.ready_when ? wait_ready_when(d) : d.wait_ready(spec_.ready_timeout);
  if (elapsed != nullptr) *elapsed = w.elapsed;
  if (status != nullptr) *status = w.status;
  if (w.what == Daemon::Ready::ready) return std::nullopt;
  const std::string tail_text = d.stderr_tail();  // drains the pipe once the daemon is gone
  std::string head;  // the cause often comes first, before a usage dump longer than the tail
  if (const auto file = d.stderr_file(); !file.empty()) {
    std::ifstream in(file);
    head.resize(64 << 10);
    in.read(head.data(), static_cast<std::streamsize>(head.size()));
    head.resize(static_cast<std::size_t>(std::max<std::streamsize>(in.gcount(), 0)));
  }
  std::string tail = explaining_lines(head, tail_text);
  std::string why = w.what == Daemon::Ready::timeout
                        ? not_ready_text()
                        : fmt::format("exited before READY ({})", status_text(w.status));
  if (!tail.empty())
    why += fmt::format("; stderr: {} (all of it: {})", tail, d.stderr_file().string());
  return why;
}

}  // namespace crashkit::detail
