// Cost of a crash-point check, measured in one run: a disarmed CRASHKIT_POINT against a plain
// relaxed atomic load (the floor) and libfiu's fiu_fail() with nothing enabled (the peer),
// and the same site while another point is armed (in a re-exec with CRASHKIT_PLAN set).
// Each figure is the best of several rounds of many iterations, in ns per check.
//
//   crash_point_cost [ITERATIONS]     (default 200,000,000)
#define FIU_ENABLE 1
#include <fiu.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "crashkit/crash_point.hpp"

namespace {

std::atomic<std::uint8_t> g_floor{0};
volatile std::uint64_t g_sink = 0;

template <typename Body>
double best_ns(std::uint64_t iters, Body body) {
  double best = 1e9;
  for (int round = 0; round < 5; ++round) {
    auto t0 = std::chrono::steady_clock::now();
    for (std::uint64_t i = 0; i < iters; ++i) {
      body();
      asm volatile("" : : "r"(i));  // keep the loop; no memory clobber
    }
    double ns =
        std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
    best = std::min(best, ns / static_cast<double>(iters));
  }
  return best;
}

double measure_point(std::uint64_t iters) {
  return best_ns(iters, [] { CRASHKIT_POINT("bench.point"); });
}

void other_site() {
  CRASHKIT_POINT("bench.other");
}

}  // namespace

int main(int argc, char** argv) {
  std::uint64_t iters = 200'000'000;
  bool child = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--armed-child") == 0)
      child = true;
    else
      iters = std::strtoull(argv[i], nullptr, 10);
  }
  if (child) {  // CRASHKIT_PLAN arms bench.other; measure the untouched bench.point
    std::printf("%.4f\n", measure_point(iters));
    return 0;
  }
  other_site();
  double floor = best_ns(iters, [] {
    if (__builtin_expect(g_floor.load(std::memory_order_relaxed) != 0, 0)) g_sink = g_sink + 1;
  });
  double point = measure_point(iters);
  fiu_init(0);
  double fiu = best_ns(iters, [] {
    if (fiu_fail("bench/point")) g_sink = g_sink + 1;
  });
  std::string cmd = std::string("CRASHKIT_PLAN='bench.other@999999999=kill' '") + argv[0] +
                    "' --armed-child " + std::to_string(iters);
  double armed = -1;
  if (FILE* p = popen(cmd.c_str(), "r")) {
    if (std::fscanf(p, "%lf", &armed) != 1) armed = -1;
    pclose(p);
  }
  std::printf("crash-point check cost, best of 5 rounds x %llu iterations\n",
              static_cast<unsigned long long>(iters));
  std::printf("  relaxed atomic load (floor)      : %7.3f ns\n", floor);
  std::printf("  CRASHKIT_POINT disarmed          : %7.3f ns  (goal <= 1 ns)\n", point);
  std::printf("  CRASHKIT_POINT, other point armed: %7.3f ns  (goal <= 2 ns)\n", armed);
  std::printf("  libfiu fiu_fail, nothing enabled : %7.3f ns\n", fiu);
  std::printf("ratio disarmed / floor: %.2f\n", point / floor);
  std::printf("ratio fiu_fail / disarmed: %.1fx cheaper (goal >= 40x)\n", fiu / point);
  return 0;
}
