// A really full disk (--disk-full, docs/resource-limits.md), each way shown on both sides: kvd's
// enospc-acked is caught on a full tmpfs and on a filled file system of its own, the correct
// kvd passes both, on a loop-mounted ext4 image too; the mount (and loop device) is gone after
// the cell and a kept run dir keeps the data it held; a fill into the workload, after a time or
// at its Kth acknowledged operation, says when it landed. Mounting needs CAP_SYS_ADMIN: without it,
// skipped.
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>

#include "../support/cli_runner.hpp"
#include "../support/kvd.hpp"

namespace crashkit {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

const std::string kCli = CRASHKIT_CLI;
const std::string kFixtures = fs::path(CRASHKIT_KVD).parent_path().string();

// A private directory, a tmpfs of `size` mounted on it when asked; unmounted and removed after.
struct Scratch {
  fs::path dir;
  bool mounted = false;
  explicit Scratch(const std::string& name, const char* tmpfs_size = nullptr) {
    dir = fs::temp_directory_path() / (name + "." + std::to_string(getpid()));
    fs::create_directories(dir);
    if (tmpfs_size != nullptr)
      mounted = ::mount("ck-test", dir.c_str(), "tmpfs", 0,
                        (std::string("size=") + tmpfs_size).c_str()) == 0;
  }
  ~Scratch() {
    if (mounted) ::umount2(dir.c_str(), MNT_DETACH);
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

bool may_mount() {
  Scratch probe("ck-mount-probe", "64k");
  return probe.mounted;
}

// kvd under `crashkit run --keep FLAGS`, `count` puts; `kvd_args` after kvd's usual ones.
test::CliRun run_kvd(const std::string& bug, std::vector<std::string> flags, int count = 16,
                     const std::vector<std::string>& kvd_args = {}) {
  std::vector<std::string> head{kCli, "run", "--keep"};
  head.insert(head.end(), flags.begin(), flags.end());
  head.insert(head.end(),
              {"--workload",
               "kvd-workload --socket {run_dir}/kvd.sock --ledger {ledger} --count " +
                   std::to_string(count) + " --keys 6 --tag {cycle}",
               "--check", "kvd-verify --socket {run_dir}/kvd.sock --ledger {ledger}", "--"});
  std::vector<std::string> env{"PATH=" + kFixtures + ":" + getenv("PATH")};
  if (!bug.empty()) env.push_back("KVD_BUG=" + bug);
  auto argv = test::with_kvd(head, CRASHKIT_KVD);
  argv.insert(argv.end(), kvd_args.begin(), kvd_args.end());
  return test::run_cli(argv, 2min, env);
}

bool mounted_at(const fs::path& p) {
  std::ifstream in("/proc/self/mountinfo");
  for (std::string line; std::getline(in, line);)
    if (line.find(" " + p.string() + " ") != std::string::npos) return true;
  return false;
}

TEST(DiskFull, TmpfsCatchesEnospcAckedAndPassesTheCorrectKvd) {
  if (!may_mount()) GTEST_SKIP() << "mounting a tmpfs needs CAP_SYS_ADMIN";
  Scratch runs("ck-disk-full");
  auto good = run_kvd("", {"--run-dir", (runs.dir / "good").string(), "--disk-full", "tmpfs:1M"});
  EXPECT_EQ(good.code(), 0) << good.output;
  EXPECT_NE(good.output.find("No space left on device"), std::string::npos) << good.output;
  EXPECT_NE(good.output.find("disk full: a 1048576-byte tmpfs on the data dir, filled before "
                             "the first start"),
            std::string::npos)
      << good.output;
  auto bad = run_kvd("enospc-acked",
                     {"--run-dir", (runs.dir / "bad").string(), "--disk-full", "tmpfs:1M"});
  EXPECT_EQ(bad.code(), 1) << bad.output;
  EXPECT_NE(bad.output.find("acknowledged data lost"), std::string::npos) << bad.output;
  // The tmpfs is gone, and what it held is in the kept run dir.
  for (const char* cell : {"good", "bad"}) {
    EXPECT_FALSE(mounted_at(runs.dir / cell / "data")) << cell;
    EXPECT_TRUE(fs::exists(runs.dir / cell / "data" / "wal")) << cell;
    EXPECT_FALSE(fs::exists(runs.dir / cell / "data" / ".crashkit-disk-full")) << cell;
  }
}

// fs: the data dir's own file system is filled. Here that is a small tmpfs the test mounts, so
// nothing else on the machine runs short; the ledger keeps its reserved room.
TEST(DiskFull, FsFillsTheDataDirsOwnFileSystem) {
  if (!may_mount()) GTEST_SKIP() << "the test's own small file system needs CAP_SYS_ADMIN";
  Scratch small("ck-disk-fs", "8m");
  ASSERT_TRUE(small.mounted);
  auto good = run_kvd("", {"--run-dir", (small.dir / "good").string(), "--disk-full", "fs"}, 50);
  EXPECT_EQ(good.code(), 0) << good.output;
  EXPECT_NE(good.output.find("disk full: the data dir's own file system"), std::string::npos)
      << good.output;
  auto bad =
      run_kvd("enospc-acked", {"--run-dir", (small.dir / "bad").string(), "--disk-full", "fs"}, 50);
  EXPECT_EQ(bad.code(), 1) << bad.output;
  EXPECT_NE(bad.output.find("acknowledged data lost"), std::string::npos) << bad.output;
  EXPECT_FALSE(fs::exists(small.dir / "bad" / "disk-full.filler"));  // removed before restart
}

// A fill into the workload: the correct kvd refuses what comes after it and passes. The note
// says when the fill really landed; a late one (a busy machine, no real-time priority) is shown
// as late, never as on time.
TEST(DiskFull, FillAtLandsDuringTheWorkload) {
  if (!may_mount()) GTEST_SKIP() << "mounting a tmpfs needs CAP_SYS_ADMIN";
  Scratch runs("ck-disk-fill-at");
  auto r = run_kvd("",
                   {"--run-dir", (runs.dir / "good").string(), "--disk-full", "tmpfs:1M",
                    "--fill-at", "1ms", "--disk-free", "4K"},
                   2000);
  EXPECT_EQ(r.code(), 0) << r.output;
  // Refused puts: the fill landed while the workload ran, not after it.
  EXPECT_NE(r.output.find("workload under --disk-full exited with code 1"), std::string::npos)
      << r.output;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.output, m,
                                std::regex("filled 1ms into the first workload \\(it landed "
                                           "([0-9.]+)(us|ms|s) in\\) leaving 4096 bytes free")))
      << r.output;
  const double landed = std::stod(m[1]) * (m[2] == "us" ? 1e-3 : m[2] == "s" ? 1e3 : 1.0);
  EXPECT_GE(landed, 1.0) << r.output;  // never before it was asked for
}

bool may_loop_mount() {
  return geteuid() == 0 && access("/dev/loop-control", R_OK | W_OK) == 0 &&
         (access("/usr/sbin/mkfs.ext4", X_OK) == 0 || access("/sbin/mkfs.ext4", X_OK) == 0) &&
         may_mount();
}

// Loop devices whose backing file lies under `dir` (/sys/block/loopN/loop/backing_file).
int loops_backed_under(const fs::path& dir) {
  int n = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/sys/block", ec)) {
    std::ifstream in(e.path() / "loop" / "backing_file");
    std::string file;
    if (in && std::getline(in, file) && file.starts_with(dir.string())) ++n;
  }
  return n;
}

// ext4:SIZE: a loop-mounted ext4 image, real block allocation and journal.
TEST(DiskFull, Ext4ImageCatchesEnospcAckedAndLeavesNoLoopDevice) {
  if (!may_loop_mount()) GTEST_SKIP() << "an ext4 image needs root, loop devices and mkfs.ext4";
  Scratch runs("ck-disk-ext4");
  auto good = run_kvd("", {"--run-dir", (runs.dir / "good").string(), "--disk-full", "ext4:4M"});
  EXPECT_EQ(good.code(), 0) << good.output;
  EXPECT_NE(good.output.find("No space left on device"), std::string::npos) << good.output;
  EXPECT_NE(good.output.find("a 4194304-byte loop-mounted ext4 image on the data dir"),
            std::string::npos)
      << good.output;
  auto bad =
      run_kvd("enospc-acked", {"--run-dir", (runs.dir / "bad").string(), "--disk-full", "ext4:4M"});
  EXPECT_EQ(bad.code(), 1) << bad.output;
  EXPECT_NE(bad.output.find("acknowledged data lost"), std::string::npos) << bad.output;
  for (const char* cell : {"good", "bad"}) {
    EXPECT_FALSE(mounted_at(runs.dir / cell / "data")) << cell;
    EXPECT_TRUE(fs::exists(runs.dir / cell / "data" / "wal")) << cell;
    EXPECT_FALSE(fs::exists(runs.dir / cell / "data" / "lost+found")) << cell;
    EXPECT_FALSE(fs::exists(runs.dir / cell / "disk-full.ext4")) << cell;
  }
  EXPECT_EQ(loops_backed_under(runs.dir), 0);  // autoclear detached them at the unmount
}

// op:K: the workload is stopped at its Kth acknowledgement while the disk fills, so the fill
// lands there and not after a fast workload has finished. kvd checkpoints rarely here: its WAL
// must be what runs out of room (enospc-acked acknowledges a failed WAL append).
TEST(DiskFull, FillAtOpLandsAtTheKthAcknowledgedOperation) {
  if (!may_mount()) GTEST_SKIP() << "mounting a tmpfs needs CAP_SYS_ADMIN";
  Scratch runs("ck-disk-fill-op");
  const std::vector<std::string> rare_checkpoints{"--checkpoint-every", "1000"};
  auto good = run_kvd(
      "",
      {"--run-dir", (runs.dir / "good").string(), "--disk-full", "tmpfs:1M", "--fill-at", "op:5"},
      200, rare_checkpoints);
  EXPECT_EQ(good.code(), 0) << good.output;
  EXPECT_NE(good.output.find("workload under --disk-full exited with code 1"), std::string::npos)
      << good.output;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(good.output, m,
                                std::regex(R"(operation 5 \(the workload stopped with (\d+) ack)")))
      << good.output;
  EXPECT_GE(std::stoi(m[1]), 5);
  EXPECT_LT(std::stoi(m[1]), 200);  // it did not run to its end before the fill
  auto bad = run_kvd(
      "enospc-acked",
      {"--run-dir", (runs.dir / "bad").string(), "--disk-full", "tmpfs:1M", "--fill-at", "op:5"},
      200, rare_checkpoints);
  EXPECT_EQ(bad.code(), 1) << bad.output;
  EXPECT_NE(bad.output.find("acknowledged data lost"), std::string::npos) << bad.output;
  // A K the workload never reaches: nothing was tested, and the cell says so.
  auto never = run_kvd("", {"--run-dir", (runs.dir / "never").string(), "--disk-full", "tmpfs:1M",
                            "--fill-at", "op:500"});
  EXPECT_EQ(never.code(), 0) << never.output;
  EXPECT_NE(never.output.find("fault_not_reached: --fill-at op:500: the disk was never filled: "
                              "the first workload acknowledged 16 operation(s)"),
            std::string::npos)
      << never.output;
}

TEST(DiskFull, BadInputIsOneLineAndExit2) {
  for (const std::vector<std::string>& flags :
       {std::vector<std::string>{"--disk-full", "tmpfs:1"},
        std::vector<std::string>{"--disk-full", "ext3"},
        std::vector<std::string>{"--fill-at", "10ms"},
        std::vector<std::string>{"--disk-full", "tmpfs:1M", "--disk-free", "lots"},
        std::vector<std::string>{"--disk-full", "tmpfs:1M", "--fill-at", "-1s"},
        std::vector<std::string>{"--disk-full", "tmpfs:1M", "--replicas", "3"},
        std::vector<std::string>{"--disk-full", "ext4:1M"},
        std::vector<std::string>{"--disk-full", "tmpfs:1M", "--fill-at", "op:0"},
        // op:K counts the ledger: without a workload writing {ledger} there is nothing to count
        std::vector<std::string>{"--disk-full", "tmpfs:1M", "--fill-at", "op:5"}}) {
    std::vector<std::string> argv{kCli, "run"};
    argv.insert(argv.end(), flags.begin(), flags.end());
    argv.insert(argv.end(), {"--", "/bin/true"});
    auto r = test::run_cli(argv);
    EXPECT_EQ(r.code(), 2) << flags[0] << ": " << r.output;
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
  }
}

}  // namespace
}  // namespace crashkit
