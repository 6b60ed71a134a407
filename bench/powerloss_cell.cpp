// What a user pays for power loss: the same kvd cell through `crashkit run`, once with
// --fault sigkill and once with --fault powerloss (shim in the target, rollback before the
// restart), interleaved in rounds so machine noise hits both alike. Prints the medians and
// the ratio (goal: powerloss <= 1.5x sigkill).
//
//   powerloss_cell [ROUNDS]   (default 15)
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "cli_timing.hpp"

namespace {

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
  return bench::timed_cli_ms(std::move(args), "powerloss_cell: the " + fault + " cell");
}

}  // namespace

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 15;
  std::vector<double> kill, power;
  for (int i = 0; i < rounds; ++i) {
    kill.push_back(run_ms("sigkill"));
    power.push_back(run_ms("powerloss"));
  }
  const double k = bench::median(kill), p = bench::median(power);
  std::printf("kvd cell through crashkit run (16 writes, checkpoint every 6), %d rounds\n", rounds);
  std::printf("  --fault sigkill   : median %.1f ms\n", k);
  std::printf("  --fault powerloss : median %.1f ms\n", p);
  std::printf("ratio powerloss / sigkill: %.2f (goal <= 1.5)\n", p / k);
  return 0;
}
