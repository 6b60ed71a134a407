// What a group costs through `crashkit run`: the notify fixture (READY=1 at once) as a group of
// 1, 3 and 9 replicas, 5 cycles of sigkill@all each, against three single-replica cells run one
// after another, interleaved in rounds so machine noise hits all alike. Prints the medians, the
// 3-replica cell against three single cells (goal <= 1.0: a group is never dearer than its
// members run apart), and the harness's marginal cost per replica from 1 to 3 and from 3 to 9
// (goal: flat, the second at most 1.5x the first).
//
//   replica_cell [ROUNDS]   (default 9)
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "cli_timing.hpp"

namespace {

double run_ms(int replicas) {
  return bench::timed_cli_ms(
      {CRASHKIT_CLI, "run", "-q", "--fault", "sigkill@all", "--replicas", std::to_string(replicas),
       "--cycles", "5", "--", CRASHKIT_NOTIFY_FIXTURE},
      "replica_cell: the " + std::to_string(replicas) + "-replica cell");
}

}  // namespace

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 9;
  std::vector<double> one, three, nine, singles;
  for (int i = 0; i < rounds; ++i) {
    one.push_back(run_ms(1));
    three.push_back(run_ms(3));
    nine.push_back(run_ms(9));
    singles.push_back(run_ms(1) + run_ms(1) + run_ms(1));
  }
  const double t1 = bench::median(one), t3 = bench::median(three), t9 = bench::median(nine),
               s3 = bench::median(singles);
  std::printf("notify fixture, 5 cycles of sigkill@all through crashkit run, %d rounds\n", rounds);
  std::printf("  --replicas 1 : median %.1f ms\n", t1);
  std::printf("  --replicas 3 : median %.1f ms\n", t3);
  std::printf("  --replicas 9 : median %.1f ms\n", t9);
  std::printf("  three single cells in sequence: median %.1f ms\n", s3);
  std::printf("ratio 3 replicas / three single cells: %.2f (goal <= 1.0)\n", t3 / s3);
  const double m13 = (t3 - t1) / 2, m39 = (t9 - t3) / 6;
  std::printf("marginal ms per replica: 1->3 %.2f, 3->9 %.2f, ratio %.2f (goal <= 1.5)\n", m13, m39,
              m39 / m13);
  return 0;
}
