// Start -> READY -> SIGKILL -> reap cycles: crashkit's Child + NotifyReceiver path against a
// raw posix_spawn loop and a raw fork+exec loop, measured in the same run, interleaved in
// rounds so machine noise hits all three alike. Prints rates, ratios and the READY-to-
// observed latency (the fixture stamps CLOCK_MONOTONIC into READY; we read it on receipt).
//
//   spawn_cycle [CYCLES] [FIXTURE]      (defaults: 2000, the notify-fixture next to the build)
#include <fmt/format.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "crashkit/harness/daemon.hpp"
#include "crashkit/harness/placeholders.hpp"

extern char** environ;
using namespace std::chrono_literals;
using crashkit::Clock;

namespace {

std::int64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1'000'000'000LL + ts.tv_nsec;
}

// crashkit's path: Daemon (Child via vfork, pidfd) + NotifyReceiver.
double crashkit_round(int n, const std::vector<std::string>& argv, crashkit::NotifyReceiver& rx,
                      std::vector<double>& latency_us) {
  crashkit::Daemon::Options o;
  o.argv = argv;
  o.env = crashkit::child_environment({});
  auto t0 = Clock::now();
  for (int i = 0; i < n; ++i) {
    auto d = crashkit::Daemon::start(o, rx);
    if (!d) {
      fmt::print(stderr, "{}\n", d.error().message);
      std::exit(3);
    }
    auto w = d->wait_ready(10s);
    std::int64_t seen = monotonic_ns();
    if (w.what != crashkit::Daemon::Ready::ready) std::exit(3);
    auto it = rx.state().extensions.find("X_BENCH_SENT_NS");
    if (it != rx.state().extensions.end())
      latency_us.push_back((seen - std::stoll(it->second)) / 1e3);
    d->kill();
  }
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// The floor: the least a harness must do. Spawn, block in recv() for READY, SIGKILL, reap.
double raw_round(int n, const std::vector<std::string>& argv, const std::string& sock_path,
                 bool use_fork, std::vector<double>& latency_us) {
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::strcpy(sa.sun_path, sock_path.c_str());
  unlink(sock_path.c_str());
  bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  std::string env_notify = "NOTIFY_SOCKET=" + sock_path;
  std::vector<char*> envp;
  for (char** e = environ; *e != nullptr; ++e) envp.push_back(*e);
  envp.push_back(env_notify.data());
  envp.push_back(nullptr);
  std::vector<char*> av;
  for (const auto& a : argv) av.push_back(const_cast<char*>(a.c_str()));
  av.push_back(nullptr);
  char buf[4096];
  auto t0 = Clock::now();
  for (int i = 0; i < n; ++i) {
    pid_t pid = -1;
    if (use_fork) {
      pid = fork();
      if (pid == 0) {
        execve(av[0], av.data(), envp.data());
        _exit(127);
      }
    } else {
      posix_spawn(&pid, av[0], nullptr, nullptr, av.data(), envp.data());
    }
    ssize_t got = 0;
    while ((got = recv(fd, buf, sizeof buf - 1, 0)) > 0) {
      buf[got] = '\0';
      if (std::strstr(buf, "READY=1") != nullptr) break;
    }
    std::int64_t seen = monotonic_ns();
    if (const char* ts = std::strstr(buf, "X_BENCH_SENT_NS="))
      latency_us.push_back((seen - std::atoll(ts + 16)) / 1e3);
    kill(pid, SIGKILL);
    int st = 0;
    waitpid(pid, &st, 0);
  }
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  close(fd);
  unlink(sock_path.c_str());
  return secs;
}

}  // namespace

int main(int argc, char** argv) {
  int cycles = argc > 1 ? std::atoi(argv[1]) : 2000;
  std::string fixture = argc > 2 ? argv[2] : CRASHKIT_NOTIFY_FIXTURE;
  std::vector<std::string> target{fixture, "--mode", "ready", "--bench-ts"};
  auto dir = std::filesystem::temp_directory_path() / fmt::format("ck-bench-{}", getpid());
  std::filesystem::create_directories(dir);
  auto rx = crashkit::NotifyReceiver::bind((dir / "rx.sock").string());
  if (!rx) return 3;

  constexpr int kRounds = 10;
  int per_round = std::max(1, cycles / kRounds);
  double t_crashkit = 0, t_spawn = 0, t_fork = 0;
  std::vector<double> latency_us, raw_latency_us, unused;
  crashkit_round(20, target, *rx, latency_us);  // warm-up
  latency_us.clear();
  for (int r = 0; r < kRounds; ++r) {
    t_crashkit += crashkit_round(per_round, target, *rx, latency_us);
    t_spawn += raw_round(per_round, target, (dir / "raw.sock").string(), false, raw_latency_us);
    t_fork += raw_round(per_round, target, (dir / "raw.sock").string(), true, unused);
  }
  int n = per_round * kRounds;
  auto pct_of = [](std::vector<double>& v, double p) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0.0 : v[static_cast<std::size_t>(p * (v.size() - 1))];
  };
  fmt::print("start -> READY -> SIGKILL -> reap, {} cycles each, {} interleaved rounds\n", n,
             kRounds);
  fmt::print("  raw posix_spawn loop : {:8.1f} cycles/s\n", n / t_spawn);
  fmt::print("  raw fork+exec loop   : {:8.1f} cycles/s\n", n / t_fork);
  fmt::print("  crashkit Daemon      : {:8.1f} cycles/s\n", n / t_crashkit);
  fmt::print("ratio crashkit / raw posix_spawn: {:.3f} (goal >= 0.95)\n", t_spawn / t_crashkit);
  fmt::print("ratio raw posix_spawn / raw fork+exec: {:.3f}\n", t_fork / t_spawn);
  fmt::print("READY sent -> observed, crashkit: p50 {:.1f} us, p99 {:.1f} us (goal p50 <= 50 us)\n",
             pct_of(latency_us, 0.5), pct_of(latency_us, 0.99));
  fmt::print(
      "READY sent -> observed, raw recv(): p50 {:.1f} us, p99 {:.1f} us (kernel wake-up floor)\n",
      pct_of(raw_latency_us, 0.5), pct_of(raw_latency_us, 0.99));
  std::filesystem::remove_all(dir);
  return 0;
}
