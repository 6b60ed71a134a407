// What a user pays for power loss: the same kvd cell through `crashkit run`, once with
// --fault sigkill and once with --fault powerloss (shim in the target, rollback before the
// restart), interleaved in rounds so machine noise hits both alike. Prints the medians and
// the ratio (goal: powerloss <= 1.5x sigkill).
//
//   powerloss_cell [ROUNDS]   (default 15)
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;

double run_ms(const std::string& fault) {
  const std::string fixtures = CRASHKIT_FIXTURES_DIR;
  std::vector<std::string> args = {
      CRASHKIT_CLI,
      "run",
      "-q",
      "--fault",
      fault,
      "--workload",
      fixtures + "/kvd-workload --socket {run_dir}/kvd.sock --ledger {ledger} --count 16 --keys 6",
      "--check",
      fixtures + "/kvd-verify --socket {run_dir}/kvd.sock --ledger {ledger}",
      "--",
      fixtures + "/kvd",
      "--data-dir",
      "{data_dir}",
      "--socket",
      "{run_dir}/kvd.sock",
      "--checkpoint-every",
      "6"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  auto t0 = Clock::now();
  pid_t pid;
  if (posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ) != 0) std::exit(3);
  int st = 0;
  waitpid(pid, &st, 0);
  posix_spawn_file_actions_destroy(&fa);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    std::fprintf(stderr, "powerloss_cell: the %s cell did not pass (status %d)\n", fault.c_str(),
                 st);
    std::exit(1);
  }
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 15;
  std::vector<double> kill, power;
  for (int i = 0; i < rounds; ++i) {
    kill.push_back(run_ms("sigkill"));
    power.push_back(run_ms("powerloss"));
  }
  const double k = median(kill), p = median(power);
  std::printf("kvd cell through crashkit run (16 writes, checkpoint every 6), %d rounds\n", rounds);
  std::printf("  --fault sigkill   : median %.1f ms\n", k);
  std::printf("  --fault powerloss : median %.1f ms\n", p);
  std::printf("ratio powerloss / sigkill: %.2f (goal <= 1.5)\n", p / k);
  return 0;
}
