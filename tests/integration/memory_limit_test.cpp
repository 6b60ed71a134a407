// --memory (docs/resource-limits.md): kvd holding 16 values of 2 MB passes without a limit and
// is OOM-killed under a 16 MiB one, the reason naming the OOM kill first; no cgroup is left
// behind. Skipped where crashkit may create no memory cgroup (it says so, exit 3).
#include <gtest/gtest.h>

#include <filesystem>

#include "../support/cli_runner.hpp"
#include "../support/kvd.hpp"

namespace crashkit {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

const std::string kCli = CRASHKIT_CLI;
const std::string kFixtures = fs::path(CRASHKIT_KVD).parent_path().string();

test::CliRun run_kvd(std::vector<std::string> flags) {
  std::vector<std::string> head{kCli, "run"};
  head.insert(head.end(), flags.begin(), flags.end());
  head.insert(head.end(),
              {"--workload",
               "kvd-workload --socket {run_dir}/kvd.sock --ledger {ledger} --count 16 "
               "--keys 16 --value-size 2000000 --tag {cycle}",
               "--check", "kvd-verify --socket {run_dir}/kvd.sock --ledger {ledger}", "--"});
  return test::run_cli(test::with_kvd(head, CRASHKIT_KVD), 2min,
                       {"PATH=" + kFixtures + ":" + getenv("PATH")});
}

TEST(MemoryLimit, AnOomKillIsNamedAndTheUnlimitedCellPasses) {
  auto limited = run_kvd({"--memory", "16M"});
  if (limited.output.find("no memory cgroup crashkit may create") != std::string::npos)
    GTEST_SKIP() << limited.output;
  EXPECT_EQ(limited.code(), 1) << limited.output;
  EXPECT_NE(limited.output.find("unexpected_exit: out of memory: the OOM killer killed"),
            std::string::npos)
      << limited.output;
  EXPECT_NE(limited.output.find("limit 16777216 bytes"), std::string::npos) << limited.output;
  auto plain = run_kvd({});
  EXPECT_EQ(plain.code(), 0) << plain.output;
  EXPECT_EQ(plain.output.find("out of memory"), std::string::npos) << plain.output;
}

TEST(MemoryLimit, BadSizesAreOneLineAndExit2) {
  for (const char* bad : {"1K", "lots", "99999999999999999999G"}) {
    auto r = test::run_cli({kCli, "run", "--memory", bad, "--", "/bin/true"});
    EXPECT_EQ(r.code(), 2) << bad << ": " << r.output;
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
  }
  auto group =
      test::run_cli({kCli, "run", "--memory", "16M", "--replicas", "3", "--", "/bin/true"});
  EXPECT_EQ(group.code(), 2) << group.output;
}

}  // namespace
}  // namespace crashkit
