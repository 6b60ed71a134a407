// Cost of the power-loss shim (libcrashkit_powerloss.so) against no shim, measured in the same
// run: each workload runs in a re-exec of this binary (a worker), once with the shim preloaded
// and armed (a freshly reset journal dir, the data dir as scope) and once without, interleaved
// in rounds so machine noise hits both alike. The worker times its own loop; the parent prints
// the medians over the rounds, their ratio and the goal.
//
//   powerloss_cost [ROUNDS] [DIR]    (defaults: 7, $TMPDIR or /tmp; DIR must be on the file
//                                     system the daemons under test would use)
//   powerloss_cost --worker append|overwrite|fdatasync N DIR    (internal)
//
// Exit status: 0 if every ratio is within its goal, 1 if not, 2 if a run failed.
#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "crashkit/powerloss_journal.hpp"
#include "crashkit/powerloss_rollback.hpp"

extern char** environ;

namespace {

namespace fs = std::filesystem;
namespace pl = crashkit::powerloss;

constexpr std::size_t kAppendBytes = 100;
constexpr std::size_t kBlock = 4096;
constexpr off_t kOverwriteFile = off_t{16} << 20;  // 16 MiB, written before the worker starts

struct Case {
  const char* mode;
  long count;
  double goal;       // shim / plain, at most
  long min_records;  // journal records the shim must have written (proof it was armed)
  const char* label;
};

const Case kCases[] = {
    {"append", 200000, 2.0, 200000, "100-byte appends, no fsync"},
    {"overwrite", 50000, 3.0, 50000, "4 KiB pwrite over existing data, no fsync"},
    {"fdatasync", 2000, 1.2, 4000, "100-byte append + fdatasync"},
};

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "powerloss_cost: %s: %s\n", what, std::strerror(errno));
  std::exit(2);
}

// ---- the worker: one workload, timed from inside -------------------------------------------

int worker(const std::string& mode, long n, const std::string& dir) {
  const std::string path = dir + "/f";
  char buf[kBlock];
  std::memset(buf, 'x', sizeof buf);
  int fd = -1;
  if (mode == "overwrite")
    fd = open(path.c_str(), O_RDWR | O_CLOEXEC);  // the parent wrote its 16 MiB
  else
    fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) fail("open");
  const auto t0 = std::chrono::steady_clock::now();
  for (long i = 0; i < n; ++i) {
    if (mode == "overwrite") {
      const off_t at = static_cast<off_t>((i * kBlock) % kOverwriteFile);
      if (pwrite(fd, buf, kBlock, at) != static_cast<ssize_t>(kBlock)) fail("pwrite");
    } else {
      if (write(fd, buf, kAppendBytes) != static_cast<ssize_t>(kAppendBytes)) fail("write");
      if (mode == "fdatasync" && fdatasync(fd) != 0) fail("fdatasync");
    }
  }
  const double ns =
      std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
  close(fd);
  std::printf("%.1f\n", ns / static_cast<double>(n));
  return 0;
}

// ---- the parent ------------------------------------------------------------------------------

// The environment without any preload or power-loss variables, plus `extra`.
std::vector<std::string> environment(const std::vector<std::string>& extra) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string_view v(*e);
    if (v.starts_with("LD_PRELOAD=") || v.starts_with("CRASHKIT_POWERLOSS_")) continue;
    env.emplace_back(v);
  }
  env.insert(env.end(), extra.begin(), extra.end());
  return env;
}

// Runs the worker and returns its ns/op.
double run_worker(const Case& c, const fs::path& data, const std::vector<std::string>& env) {
  std::vector<std::string> argv{"/proc/self/exe", "--worker", c.mode, std::to_string(c.count),
                                data.string()};
  std::vector<char*> av, ev;
  for (auto& s : argv) av.push_back(s.data());
  av.push_back(nullptr);
  std::vector<std::string> env_copy = env;
  for (auto& s : env_copy) ev.push_back(s.data());
  ev.push_back(nullptr);
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) fail("pipe");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
  pid_t pid = -1;
  int e = posix_spawn(&pid, "/proc/self/exe", &fa, nullptr, av.data(), ev.data());
  posix_spawn_file_actions_destroy(&fa);
  close(out[1]);
  if (e != 0) {
    errno = e;
    fail("posix_spawn");
  }
  std::string text;
  char buf[256];
  ssize_t got;
  while ((got = read(out[0], buf, sizeof buf)) > 0) text.append(buf, static_cast<std::size_t>(got));
  close(out[0]);
  int st = 0;
  waitpid(pid, &st, 0);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || text.empty()) {
    std::fprintf(stderr, "powerloss_cost: worker %s failed (status %d)\n", c.mode, st);
    std::exit(2);
  }
  return std::strtod(text.c_str(), nullptr);
}

// A fresh data dir for one run (the overwrite case gets its 16 MiB file), then the whole file
// system synced: no run pays for the previous run's dirty pages or deleted journal.
void prepare_data(const Case& c, const fs::path& data) {
  fs::remove_all(data);
  fs::create_directories(data);
  if (std::strcmp(c.mode, "overwrite") == 0) {
    int fd = open((data / "f").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) fail("open f");
    std::vector<char> block(1 << 20, 'o');
    for (off_t at = 0; at < kOverwriteFile; at += static_cast<off_t>(block.size()))
      if (write(fd, block.data(), block.size()) != static_cast<ssize_t>(block.size()))
        fail("write");
    close(fd);
  }
  int dir = open(data.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0 || syncfs(dir) != 0) fail("syncfs");
  close(dir);
}

// The global sequence counter: how many records the shim journalled in the run.
std::uint64_t journalled(const fs::path& journal) {
  std::uint64_t seq = 0;
  int fd = open((journal / std::string(pl::kSeqFile)).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0 && pread(fd, &seq, sizeof seq, 0) != static_cast<ssize_t>(sizeof seq)) seq = 0;
  if (fd >= 0) close(fd);
  return seq;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t m = v.size() / 2;
  return v.size() % 2 == 1 ? v[m] : (v[m - 1] + v[m]) / 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 5 && std::strcmp(argv[1], "--worker") == 0)
    return worker(argv[2], std::atol(argv[3]), argv[4]);
  const int rounds = argc > 1 ? std::max(1, std::atoi(argv[1])) : 7;
  const fs::path base = (argc > 2 ? fs::path(argv[2]) : fs::temp_directory_path()) /
                        ("ck-plcost-" + std::to_string(getpid()));
  const fs::path data = base / "data", journal = base / "journal";
  fs::create_directories(base);
  const auto plain_env = environment({});
  const auto shim_env = environment({std::string("LD_PRELOAD=") + CRASHKIT_POWERLOSS_SHIM,
                                     std::string(pl::kDirVariable) + "=" + journal.string(),
                                     std::string(pl::kScopeVariable) + "=" + data.string()});

  constexpr std::size_t kCaseCount = std::size(kCases);
  std::vector<double> plain[kCaseCount], shim[kCaseCount];
  const auto t0 = std::chrono::steady_clock::now();
  for (int r = 0; r < rounds; ++r) {
    for (std::size_t i = 0; i < kCaseCount; ++i) {
      const Case& c = kCases[i];
      // Alternate which goes first, so neither always runs on a warmer (or dirtier) cache.
      for (int k = 0; k < 2; ++k) {
        const bool with_shim = (k == 0) == (r % 2 == 0);
        std::string err;
        if (!pl::reset_journal_dir(journal.string(), err)) {  // both: the same deletions
          std::fprintf(stderr, "powerloss_cost: %s\n", err.c_str());
          return 2;
        }
        prepare_data(c, data);
        if (!with_shim) {
          plain[i].push_back(run_worker(c, data, plain_env));
          continue;
        }
        shim[i].push_back(run_worker(c, data, shim_env));
        const std::uint64_t records = journalled(journal);
        if (records < static_cast<std::uint64_t>(c.min_records)) {
          std::fprintf(stderr,
                       "powerloss_cost: the shim journalled %llu records for %s (expected >= "
                       "%ld): not armed?\n",
                       static_cast<unsigned long long>(records), c.mode, c.min_records);
          return 2;
        }
      }
    }
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  fs::remove_all(base);

  std::printf(
      "power-loss shim cost: median ns/op over %d interleaved rounds (%.1f s), data in %s\n",
      rounds, secs, base.parent_path().c_str());
  std::printf("%-44s %8s %10s %10s %7s %6s\n", "case", "ops", "plain", "shim", "ratio", "goal");
  bool all_ok = true;
  std::vector<std::string> verdicts;
  for (std::size_t i = 0; i < kCaseCount; ++i) {
    const Case& c = kCases[i];
    const double p = median(plain[i]), s = median(shim[i]), ratio = s / p;
    std::printf("%-44s %8ld %10.1f %10.1f %6.2fx %5.1fx\n", c.label, c.count, p, s, ratio, c.goal);
    const bool ok = ratio <= c.goal;
    all_ok = all_ok && ok;
    char line[160];
    std::snprintf(line, sizeof line, "%-10s %s (%.2fx, goal <= %.1fx)", c.mode,
                  ok ? "ok" : "over goal", ratio, c.goal);
    verdicts.emplace_back(line);
  }
  for (const auto& v : verdicts) std::printf("%s\n", v.c_str());
  return all_ok ? 0 : 1;
}
