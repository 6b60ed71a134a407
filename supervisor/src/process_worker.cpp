#include "process_worker.hpp"

#include <fmt/format.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>

#include "crashkit/crash_protocol.hpp"

extern char** environ;

namespace crashkit::detail {

SpawnResult spawn_process(const std::vector<std::string>& argv_strings) {
  std::vector<char*> envp, argv;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view kv(*e);
    auto key = kv.substr(0, kv.find('='));
    if (!is_service_manager_variable(key) && !is_crash_point_variable(key)) envp.push_back(*e);
  }
  envp.push_back(nullptr);
  for (const auto& a : argv_strings) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
  SpawnResult r;
  int rc = posix_spawn(&r.handle.pid, argv[0], nullptr, &attr, argv.data(), envp.data());
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    r.handle.pid = -1;
    r.error = fmt::format("cannot spawn {}: {}", argv_strings[0], std::strerror(rc));
    return r;
  }
  r.handle.pidfd = static_cast<int>(syscall(SYS_pidfd_open, r.handle.pid, 0));
  if (r.handle.pidfd < 0) {  // cannot watch it: do not leave it running unwatched
    int e = errno;
    kill(r.handle.pid, SIGKILL);
    while (waitpid(r.handle.pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    r.handle.pid = -1;
    r.error = fmt::format("cannot watch {} (pidfd_open): {}", argv_strings[0], std::strerror(e));
  }
  return r;
}

ProcessEnd reap_process(ProcessHandle& h, bool stop_requested) {
  int status = 0;
  pid_t got;
  while ((got = waitpid(h.pid, &status, WNOHANG)) < 0 && errno == EINTR) {
  }
  if (got == 0) return {};
  close(h.pidfd);
  h = {};
  if (got < 0) return {true, false, "was reaped by someone else (SIGCHLD ignored?)"};
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return {true, true, {}};
  if (stop_requested && WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM) return {true, true, {}};
  if (WIFEXITED(status))
    return {true, false, fmt::format("exited with code {}", WEXITSTATUS(status))};
  const char* name = sigabbrev_np(WTERMSIG(status));
  return {true, false, fmt::format("killed by SIG{}", name != nullptr ? name : "?")};
}

}  // namespace crashkit::detail
