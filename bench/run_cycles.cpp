// What users run: `crashkit run --fault sigkill --cycles N` against a minimal daemon
// (notify-fixture: READY=1, then waits), against the floor measured in the same run: a bare
// posix_spawn -> READY -> SIGKILL -> waitpid loop on the same daemon. The two alternate in rounds
// so machine noise hits both alike; the median cycle of each round (from the daemon's READY stamps)
// is a second, noise-robust figure. Then one long run's per-cycle cost, from the daemon's own
// READY stamps, by decade of cycles: flat from cycle 1 to 10,000 means no per-cycle growth.
//
//   run_cycles [CYCLES_PER_ROUND=1000] [ROUNDS=9] [LONG_RUN=10000]
//
// A run of N cycles starts the daemon N+1 times (N SIGKILLs and restarts, a final SIGTERM), so the
// floor loop runs N+1 cycles per round. crashkit's own start-up is inside its time.
#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

extern char** environ;

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::vector<char*> c_array(std::vector<std::string>& words) {
  std::vector<char*> out;
  for (auto& w : words) out.push_back(w.data());
  out.push_back(nullptr);
  return out;
}

// One `crashkit run`; exits the bench if it does not pass.
double crashkit_round(int cycles, const std::string& fixture, const fs::path& run_dir,
                      const std::string& stamp = {}) {
  std::vector<std::string> argv{CRASHKIT_CLI,
                                "run",
                                "-q",
                                "--fault",
                                "sigkill",
                                "--cycles",
                                std::to_string(cycles),
                                "--run-dir",
                                run_dir.string(),
                                "--",
                                fixture};
  if (!stamp.empty()) argv.insert(argv.end(), {"--stamp", stamp});
  auto av = c_array(argv);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  auto t0 = Clock::now();
  pid_t pid = -1;
  if (posix_spawn(&pid, av[0], &fa, nullptr, av.data(), environ) != 0) std::exit(3);
  int st = 0;
  waitpid(pid, &st, 0);
  double secs = seconds_since(t0);
  posix_spawn_file_actions_destroy(&fa);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    fmt::print(stderr, "crashkit run failed (status {:#x})\n", st);
    std::exit(3);
  }
  return secs;
}

// The floor: spawn, block in recv() for READY, SIGKILL, reap.
double floor_round(int cycles, const std::string& fixture, const fs::path& sock_path,
                   const std::string& stamp) {
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::strncpy(sa.sun_path, sock_path.c_str(), sizeof sa.sun_path - 1);
  unlink(sock_path.c_str());
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) std::exit(3);
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) env.emplace_back(*e);
  env.push_back("NOTIFY_SOCKET=" + sock_path.string());
  std::vector<std::string> argv{fixture, "--stamp", stamp};
  auto envp = c_array(env);
  auto av = c_array(argv);
  char buf[4096];
  auto t0 = Clock::now();
  for (int i = 0; i < cycles; ++i) {
    pid_t pid = -1;
    if (posix_spawn(&pid, av[0], nullptr, nullptr, av.data(), envp.data()) != 0) std::exit(3);
    ssize_t got = 0;
    while ((got = recv(fd, buf, sizeof buf - 1, 0)) > 0) {
      buf[got] = '\0';
      if (std::strstr(buf, "READY=1") != nullptr) break;
    }
    kill(pid, SIGKILL);
    int st = 0;
    waitpid(pid, &st, 0);
  }
  double secs = seconds_since(t0);
  close(fd);
  unlink(sock_path.c_str());
  return secs;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// The daemon's READY stamps (ns), one per start, in order; the file is removed.
std::vector<long long> read_stamps(const fs::path& file) {
  std::vector<long long> ns;
  std::ifstream in(file);
  for (long long v = 0; in >> v;) ns.push_back(v);
  fs::remove(file);
  return ns;
}

// Median interval between consecutive READYs in us: one cycle's whole cost, robust to the few
// cycles a busy machine stretches by milliseconds.
double median_cycle_us(const std::vector<long long>& ns) {
  std::vector<double> gaps;
  for (std::size_t i = 1; i < ns.size(); ++i) gaps.push_back((ns[i] - ns[i - 1]) / 1e3);
  return median(gaps);
}

}  // namespace

int main(int argc, char** argv) {
  const int per_round = argc > 1 ? std::atoi(argv[1]) : 1000;
  const int rounds = argc > 2 ? std::atoi(argv[2]) : 9;
  const int long_run = argc > 3 ? std::atoi(argv[3]) : 10000;
  if (per_round < 1 || rounds < 1 || long_run < 10) {
    fmt::print(stderr, "usage: run_cycles [CYCLES_PER_ROUND>=1] [ROUNDS>=1] [LONG_RUN>=10]\n");
    return 2;
  }
  const std::string fixture = CRASHKIT_NOTIFY_FIXTURE;
  const fs::path dir = fs::temp_directory_path() / fmt::format("ck-run-cycles-{}", getpid());
  fs::create_directories(dir);

  crashkit_round(20, fixture, dir / "warm");  // page cache, cgroup probe
  // Paired rounds, the order alternating: the machine's speed drifts by several percent over
  // seconds (seen here: one loop 1.80 then 1.89 ms per cycle a minute later), so each round's
  // ratio compares two runs a second apart, and the median of those ratios is the result.
  // Each round also stamps every READY, for a second figure: the median cycle of each side.
  // A total counts every cycle a busy machine stretched; a median does not.
  double t_crashkit = 0, t_floor = 0;
  std::vector<double> ratios, cycle_ratios, floor_cycles, crashkit_cycles;
  const std::string stamps_c = (dir / "stamps.c").string(), stamps_f = (dir / "stamps.f").string();
  for (int r = 0; r < rounds; ++r) {
    auto ours = [&] {
      return crashkit_round(per_round, fixture, dir / fmt::format("r{}", r), stamps_c);
    };
    auto bare = [&] { return floor_round(per_round + 1, fixture, dir / "floor.sock", stamps_f); };
    double c = 0, f = 0;
    if (r % 2 == 0) {
      c = ours();
      f = bare();
    } else {
      f = bare();
      c = ours();
    }
    t_crashkit += c;
    t_floor += f;
    ratios.push_back(f / c);
    crashkit_cycles.push_back(median_cycle_us(read_stamps(stamps_c)));
    floor_cycles.push_back(median_cycle_us(read_stamps(stamps_f)));
    cycle_ratios.push_back(floor_cycles.back() / crashkit_cycles.back());
  }
  const double starts = static_cast<double>(rounds) * (per_round + 1);
  fmt::print("start -> READY -> SIGKILL -> reap: {} rounds of {} cycles ({} starts each side)\n",
             rounds, per_round, starts);
  fmt::print("  floor (posix_spawn loop)      : {:8.1f} starts/s\n", starts / t_floor);
  fmt::print("  crashkit run --cycles {:<7}: {:8.1f} starts/s\n", per_round, starts / t_crashkit);
  std::sort(ratios.begin(), ratios.end());
  fmt::print(
      "ratio crashkit run / floor: {:.3f} (goal >= 0.95); rounds {:.3f}..{:.3f}, "
      "all rounds together {:.3f}\n",
      median(ratios), ratios.front(), ratios.back(), t_floor / t_crashkit);
  std::sort(cycle_ratios.begin(), cycle_ratios.end());
  fmt::print(
      "median cycle (READY to READY): floor {:.1f} us, crashkit run {:.1f} us; ratio {:.3f}, "
      "rounds {:.3f}..{:.3f}\n",
      median(floor_cycles), median(crashkit_cycles), median(cycle_ratios), cycle_ratios.front(),
      cycle_ratios.back());

  // One long run: the interval between consecutive READYs is one cycle's whole cost.
  const fs::path stamps = dir / "stamps";
  double t_long = crashkit_round(long_run, fixture, dir / "long", stamps.string());
  const std::vector<long long> ns = read_stamps(stamps);
  fmt::print("one run of {} cycles: {:.1f} s, {:.1f} starts/s\n", long_run, t_long,
             (long_run + 1) / t_long);
  // Decades of cycles: 1..10, 11..100, 101..1000, ... (gap i is cycle i's cost).
  std::vector<double> firsts, lasts;
  for (std::size_t lo = 1, hi = 10; lo < ns.size(); lo = hi + 1, hi *= 10) {
    std::vector<double> gaps;
    for (std::size_t i = lo; i <= std::min(hi, ns.size() - 1); ++i)
      gaps.push_back((ns[i] - ns[i - 1]) / 1e3);
    fmt::print("  cycles {:>5}..{:<5}: median {:7.1f} us per cycle\n", lo,
               std::min(hi, ns.size() - 1), median(gaps));
    (firsts.empty() ? firsts : lasts) = gaps;
  }
  if (!firsts.empty() && !lasts.empty())
    fmt::print("per-cycle cost, last decade / first: {:.3f} (flat: about 1)\n",
               median(lasts) / median(firsts));
  fs::remove_all(dir);
  return 0;
}
