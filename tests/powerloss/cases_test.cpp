// The power-loss shim and rollback, two-sided, one durability case at a time: the case runs
// under the shim (LD_PRELOAD) and SIGKILLs itself (the cut); roll_back() undoes what was not
// durable; the file system must then hold exactly what a power loss could have left.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "crashkit/powerloss_journal.hpp"
#include "crashkit/powerloss_rollback.hpp"

namespace crashkit::powerloss {
namespace {

namespace fs = std::filesystem;

struct Outcome {
  int status = -1;  // wait status of the `run` step
  RollbackReport report;
  std::string f, n;  // contents of DIR/f and DIR/n after rollback ("-": absent)
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return "-";
  return {std::istreambuf_iterator<char>(in), {}};
}

int run(const std::vector<std::string>& argv, const std::vector<std::string>& env) {
  pid_t pid = fork();
  if (pid == 0) {
    std::vector<char*> a, e;
    for (const auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
    a.push_back(nullptr);
    for (const auto& s : env) e.push_back(const_cast<char*>(s.c_str()));
    e.push_back(nullptr);
    execve(a[0], a.data(), e.data());
    _exit(127);
  }
  int st = -1;
  waitpid(pid, &st, 0);
  return st;
}

Outcome cut(const std::string& name, RollbackOptions opt = {}) {
  const fs::path root =
      fs::temp_directory_path() / ("ck-pl-" + std::to_string(getpid()) + "-" + name);
  fs::remove_all(root);
  const fs::path data = root / "data", journal = root / "journal";
  fs::create_directories(data);
  std::string err;
  EXPECT_TRUE(reset_journal_dir(journal.string(), err)) << err;
  EXPECT_EQ(run({CRASHKIT_POWERLOSS_CASES, "prepare", name, data.string()}, {}), 0);
  Outcome o;
  o.status = run(
      {CRASHKIT_POWERLOSS_CASES, "run", name, data.string()},
      {"LD_PRELOAD=" CRASHKIT_POWERLOSS_SHIM, std::string(kDirVariable) + "=" + journal.string(),
       std::string(kScopeVariable) + "=" + data.string(),
       // An ASan build of the case program: the shim is preloaded ahead of its runtime.
       "ASAN_OPTIONS=verify_asan_link_order=0"});
  opt.scope = {data.string()};
  o.report = roll_back(journal.string(), opt);
  o.f = slurp(data / "f");
  o.n = slurp(data / "n");
  fs::remove_all(root);
  return o;
}

std::string lines(const RollbackReport& r) {
  std::string s;
  for (const auto& l : r.lines) s += "  " + l + "\n";
  for (const auto& l : r.errors) s += "  error: " + l + "\n";
  return s;
}

class MustLose : public ::testing::TestWithParam<const char*> {};
TEST_P(MustLose, TheUnsyncedChangeIsRolledBack) {
  auto o = cut(GetParam());
  ASSERT_TRUE(WIFSIGNALED(o.status) && WTERMSIG(o.status) == SIGKILL) << o.status;
  EXPECT_EQ(o.f, "old") << lines(o.report);
  EXPECT_EQ(o.n, "-") << lines(o.report);
  EXPECT_TRUE(o.report.errors.empty()) << lines(o.report);
  EXPECT_GE(o.report.undone, 1u);
}
INSTANTIATE_TEST_SUITE_P(Powerloss, MustLose,
                         ::testing::Values("write_no_fsync", "fsync_other_inode",
                                           "sync_file_range_only", "create_no_dir_fsync",
                                           "rename_replace_no_dir_fsync", "mmap_no_msync",
                                           "stdio_no_fsync"),
                         [](const auto& info) { return std::string(info.param); });

class MustKeep : public ::testing::TestWithParam<std::pair<const char*, const char*>> {};
TEST_P(MustKeep, TheSyncedChangeSurvives) {
  auto o = cut(GetParam().first);
  ASSERT_TRUE(WIFSIGNALED(o.status) && WTERMSIG(o.status) == SIGKILL) << o.status;
  EXPECT_EQ(o.f, GetParam().second) << lines(o.report);
  EXPECT_TRUE(o.report.errors.empty()) << lines(o.report);
}
INSTANTIATE_TEST_SUITE_P(Powerloss, MustKeep,
                         ::testing::Values(std::pair{"fdatasync_append", "oldnew"},
                                           std::pair{"o_dsync", "oldnew"},
                                           std::pair{"pwritev2_dsync", "oldnew"},
                                           std::pair{"fsync_from_other_process", "oldnew"},
                                           std::pair{"syncfs", "oldnew"}, std::pair{"msync", "new"},
                                           std::pair{"stdio_fflush_fsync", "new"},
                                           std::pair{"create_dir_fsync", "old"}),
                         [](const auto& info) { return std::string(info.param.first); });

TEST(PowerlossModels, CreateWithoutDirFsyncIsLostUnderStrictAndKeptUnderExt4) {
  EXPECT_EQ(cut("create_no_dir_fsync", {.model = Model::strict}).n, "-");
  auto ext4 = cut("create_no_dir_fsync", {.model = Model::ext4});
  EXPECT_EQ(ext4.n, "new") << lines(ext4.report);
  EXPECT_EQ(cut("create_dir_fsync", {.model = Model::strict}).n, "new");
}

// ext4's journal commit: any fsync keeps every earlier directory change, but not the data of
// a file that was never fsynced itself.
TEST(PowerlossModels, AnyFsyncCommitsEarlierEntriesUnderExt4Only) {
  auto strict = cut("create_then_fsync_other", {.model = Model::strict});
  EXPECT_EQ(strict.n, "-") << lines(strict.report);
  EXPECT_EQ(strict.f, "oldnew");
  auto ext4 = cut("create_then_fsync_other", {.model = Model::ext4});
  EXPECT_EQ(ext4.n, "") << lines(ext4.report);  // the entry survives, its bytes do not
  EXPECT_EQ(ext4.f, "oldnew");
}

TEST(PowerlossModels, RenameReplaceWithoutDirFsyncIsUndoneAndExplained) {
  auto o = cut("rename_replace_no_dir_fsync");
  EXPECT_EQ(o.f, "old");
  bool explained = false;
  for (const auto& l : o.report.lines)
    explained |= l.find("tmp renamed over f") != std::string::npos &&
                 l.find("directory never fsynced: rename undone") != std::string::npos;
  EXPECT_TRUE(explained) << lines(o.report);
}

TEST(PowerlossCrashStates, TornOverwriteMixesWholeOldAndNewSectorsOnly) {
  int mixed_runs = 0;
  for (std::uint64_t seed = 1; seed <= 4; ++seed) {
    auto o = cut("torn_overwrite", {.state = CrashState::torn, .seed = seed});
    ASSERT_EQ(o.f.size(), 16384u) << lines(o.report);
    int olds = 0, news = 0;
    for (std::size_t s = 0; s < 16384; s += 512) {
      const std::string sector = o.f.substr(s, 512);
      if (sector == std::string(512, 'o'))
        ++olds;
      else if (sector == std::string(512, 'n'))
        ++news;
      else
        ADD_FAILURE() << "sector at " << s << " is neither all old nor all new (seed " << seed
                      << ")";
    }
    EXPECT_EQ(olds + news, 32);
    mixed_runs += olds > 0 && news > 0;
  }
  EXPECT_GE(mixed_runs, 3) << "32 fair coins per run came out all one way too often";
  // drop: every sector old again.
  EXPECT_EQ(cut("torn_overwrite").f, std::string(16384, 'o'));
}

TEST(PowerlossCrashStates, SubsetIsSeededAndReproducible) {
  auto a = cut("write_no_fsync", {.state = CrashState::subset, .seed = 7});
  auto b = cut("write_no_fsync", {.state = CrashState::subset, .seed = 7});
  EXPECT_EQ(a.f, b.f);
  EXPECT_TRUE(a.f == "old" || a.f == "oldnew") << a.f;
}

TEST(PowerlossReport, ExplainsWhatWasRolledBackAndWhen) {
  auto o = cut("write_no_fsync", {.cut_ns = ~std::uint64_t{0} >> 1});
  ASSERT_FALSE(o.report.lines.empty());
  EXPECT_NE(o.report.lines[0].find("f bytes 3-5 written"), std::string::npos) << lines(o.report);
  EXPECT_NE(o.report.lines[0].find("never fsynced: rolled back"), std::string::npos);
  auto r = cut("sync_file_range_only");
  bool noted = false;
  for (const auto& l : r.report.lines) noted |= l.find("promised nothing") != std::string::npos;
  EXPECT_TRUE(noted) << lines(r.report);
}

}  // namespace
}  // namespace crashkit::powerloss
