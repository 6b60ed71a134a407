#include "ledger/shell_output.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "crashkit/harness/child.hpp"
#include "crashkit/harness/output_capture.hpp"
#include "crashkit/harness/placeholders.hpp"

namespace crashkit {
namespace {

constexpr std::size_t kMaxOut = std::size_t{256} << 20;


}  // namespace

Result<ShellOutput> run_shell_output(const std::string& command) {
  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0) return harness_error(fmt::format("pipe: {}", strerror(errno)));
  if (pipe2(err, O_CLOEXEC) != 0) {
    close(out[0]), close(out[1]);
    return harness_error(fmt::format("pipe: {}", strerror(errno)));
  }
  SpawnOptions o;
  o.argv = {"/bin/sh", "-c", command};
  o.env = child_environment({});
  o.stdout_fd = out[1];
  o.stderr_fd = err[1];
  auto child = Child::spawn(o);
  close(out[1]);
  close(err[1]);
  if (!child) {
    close(out[0]), close(err[0]);
    return child.error();
  }
  ShellOutput r;
  std::string errors;
  pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  bool too_big = false;
  for (int open = 2; open > 0;) {
    if (poll(fds, 2, -1) < 0 && errno != EINTR) break;
    for (auto& p : fds) {
      if (p.fd < 0 || p.revents == 0) continue;
      char buf[65536];
      ssize_t n = read(p.fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        close(p.fd);
        p.fd = -1;
        --open;
        continue;
      }
      std::string& into = p.fd == out[0] ? r.out : errors;
      into.append(buf, static_cast<std::size_t>(n));
      if (&into == &errors && errors.size() > 65536) errors.erase(0, errors.size() - 65536);
      if (r.out.size() > kMaxOut) too_big = true;
      if (too_big) r.out.clear();
    }
  }
  for (auto& p : fds)
    if (p.fd >= 0) close(p.fd);
  r.status = child->wait();
  r.stderr_line = last_line(errors);
  if (too_big)
    return harness_error(
        fmt::format("'{}' printed more than 256 MiB; print only KEY VALUE lines "
                    "of the workload's keys",
                    command));
  return r;
}

}  // namespace crashkit
