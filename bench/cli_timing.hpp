// What the cell benchmarks share: one `crashkit run` timed from spawn to exit (its stdout to
// /dev/null, as a user's CI log would not hold it), and the median of a round's samples.
//
//   double ms = bench::timed_cli_ms({CRASHKIT_CLI, "run", "-q", "--", fixture}, "the 1-replica
//   cell");
#pragma once

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

namespace bench {

// Milliseconds from spawn to exit. A command that does not exit 0 ends the benchmark (exit 1),
// naming `what`: a failing cell's time measures nothing.
inline double timed_cli_ms(std::vector<std::string> args, const std::string& what) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  const auto t0 = std::chrono::steady_clock::now();
  pid_t pid;
  if (posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ) != 0) std::exit(3);
  int st = 0;
  waitpid(pid, &st, 0);
  posix_spawn_file_actions_destroy(&fa);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    std::fprintf(stderr, "%s did not pass (status %d)\n", what.c_str(), st);
    std::exit(1);
  }
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

// The upper median (the middle sample of an odd count).
inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace bench
