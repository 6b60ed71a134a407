// The honest measure of the harness: the default kvd matrix finds nothing in the correct kvd
// and catches every planted bug with the outcome its mistake produces; the power-loss-only
// bugs pass the kill matrix (a SIGKILL keeps the page cache) and are caught by the power-loss
// matrix, which the correct kvd passes; the exhaustion-only bug likewise passes the kill matrix
// and is caught under a low descriptor limit.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "../support/matrix_report.hpp"

namespace crashkit {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

const std::string kCli = CRASHKIT_CLI;
const std::string kSpec = CRASHKIT_SOURCE_DIR "/fixtures/kvd/matrix.yaml";
const std::string kPowerlossSpec = CRASHKIT_SOURCE_DIR "/fixtures/kvd/matrix-powerloss.yaml";
const std::string kExhaustionSpec = CRASHKIT_SOURCE_DIR "/fixtures/kvd/matrix-exhaustion.yaml";
const std::string kDiskFullSpec = CRASHKIT_SOURCE_DIR "/fixtures/kvd/matrix-disk-full.yaml";
const std::string kFixtures = fs::path(CRASHKIT_KVD).parent_path().string();

nlohmann::json run_matrix(const std::string& bug, int* code, const std::string& spec = kSpec) {
  std::vector<std::string> env{"PATH=" + kFixtures + ":" + getenv("PATH")};
  if (!bug.empty()) env.push_back("KVD_BUG=" + bug);
  auto m = test::run_matrix_report({kCli, "matrix", "-q", spec, "-j", "2", "--seed", "11"}, env);
  *code = m.code;
  return m.json;
}

TEST(KvdMatrix, CorrectKvdHasNoFindings) {
  int code = -1;
  auto j = run_matrix("", &code);
  EXPECT_EQ(code, 0);
  EXPECT_GT(j["cells"].size(), 50u);
  for (const auto& c : j["cells"])
    EXPECT_FALSE(c["finding"].get<bool>()) << c["id"] << ": " << c["reason"];
}

struct BugCase {
  const char* bug;
  const char* outcome;  // the outcome the mistake must produce in at least one cell
};

void PrintTo(const BugCase& b, std::ostream* os) {
  *os << b.bug << " -> " << b.outcome;
}

class KvdBug : public ::testing::TestWithParam<BugCase> {};

TEST_P(KvdBug, IsCaught) {
  int code = -1;
  auto j = run_matrix(GetParam().bug, &code);
  EXPECT_EQ(code, 1) << GetParam().bug;
  int hits = 0;
  for (const auto& c : j["cells"]) hits += c["outcome"] == GetParam().outcome;
  EXPECT_GT(hits, 0) << GetParam().bug << " produced no " << GetParam().outcome << ": "
                     << j["counts"];
}

INSTANTIATE_TEST_SUITE_P(Planted, KvdBug,
                         ::testing::Values(BugCase{"ack-before-write", "violation"},
                                           BugCase{"torn-tail-fatal", "not_ready"},
                                           BugCase{"checkpoint-in-place", "violation"},
                                           BugCase{"trim-before-rename", "violation"},
                                           BugCase{"replay-off-by-one", "violation"},
                                           BugCase{"enospc-acked", "violation"},
                                           BugCase{"lose-on-sigterm", "violation"},
                                           BugCase{"recovery-not-idempotent", "violation"}),
                         [](const auto& info) {
                           std::string n = info.param.bug;
                           for (char& c : n)
                             if (c == '-') c = '_';
                           return n;
                         });

TEST(KvdPowerlossMatrix, CorrectKvdHasNoFindings) {
  int code = -1;
  auto j = run_matrix("", &code, kPowerlossSpec);
  EXPECT_EQ(code, 0);
  EXPECT_GE(j["cells"].size(), 10u);
  for (const auto& c : j["cells"])
    EXPECT_FALSE(c["finding"].get<bool>()) << c["id"] << ": " << c["reason"];
}

class KvdPowerlossBug : public ::testing::TestWithParam<BugCase> {};

// One test asserts both sides: invisible to every cell of the kill matrix, caught by the
// power-loss matrix with the outcome its mistake produces.
TEST_P(KvdPowerlossBug, PassesTheKillMatrixAndIsCaughtByThePowerlossMatrix) {
  int code = -1;
  auto kill = run_matrix(GetParam().bug, &code);
  EXPECT_EQ(code, 0) << GetParam().bug << " is visible without a power loss: " << kill["counts"];
  auto power = run_matrix(GetParam().bug, &code, kPowerlossSpec);
  EXPECT_EQ(code, 1) << GetParam().bug;
  int hits = 0;
  for (const auto& c : power["cells"]) hits += c["outcome"] == GetParam().outcome;
  EXPECT_GT(hits, 0) << GetParam().bug << " produced no " << GetParam().outcome << ": "
                     << power["counts"];
}

INSTANTIATE_TEST_SUITE_P(Planted, KvdPowerlossBug,
                         ::testing::Values(BugCase{"no-dir-fsync", "violation"},
                                           BugCase{"wal-fsync-every-5", "violation"},
                                           BugCase{"checkpoint-tmp-unsynced", "violation"}),
                         [](const auto& info) {
                           std::string n = info.param.bug;
                           for (char& c : n)
                             if (c == '-') c = '_';
                           return n;
                         });

TEST(KvdExhaustionMatrix, CorrectKvdHasNoFindings) {
  int code = -1;
  auto j = run_matrix("", &code, kExhaustionSpec);
  EXPECT_EQ(code, 0);
  EXPECT_GE(j["cells"].size(), 2u);
  for (const auto& c : j["cells"])
    EXPECT_FALSE(c["finding"].get<bool>()) << c["id"] << ": " << c["reason"];
}

// Both sides for the exhaustion-only bug: the default matrix (the usual descriptor limit) passes
// it; the same workload under rlimits: {NOFILE: 24} loses acknowledged writes.
TEST(KvdExhaustionMatrix, CheckpointFdLeakPassesTheDefaultMatrixAndIsCaughtUnderALowLimit) {
  int code = -1;
  auto plain = run_matrix("checkpoint-fd-leak", &code);
  EXPECT_EQ(code, 0) << "visible without a limit: " << plain["counts"];
  auto limited = run_matrix("checkpoint-fd-leak", &code, kExhaustionSpec);
  EXPECT_EQ(code, 1);
  int hits = 0;
  for (const auto& c : limited["cells"]) hits += c["outcome"] == "violation";
  EXPECT_GT(hits, 0) << limited["counts"];
}

// A real full disk (a filled 1 MiB tmpfs) catches enospc-acked, which the default matrix catches
// only through an injected error(ENOSPC); the correct kvd refuses the puts and passes.
TEST(KvdDiskFullMatrix, CatchesEnospcAckedAndPassesTheCorrectKvd) {
  if (geteuid() != 0) GTEST_SKIP() << "mounting the tmpfs needs root";
  int code = -1;
  auto good = run_matrix("", &code, kDiskFullSpec);
  EXPECT_EQ(code, 0) << good["counts"];
  for (const auto& c : good["cells"])
    EXPECT_FALSE(c["finding"].get<bool>()) << c["id"] << ": " << c["reason"];
  auto bad = run_matrix("enospc-acked", &code, kDiskFullSpec);
  EXPECT_EQ(code, 1);
  int hits = 0;
  for (const auto& c : bad["cells"]) hits += c["outcome"] == "violation";
  EXPECT_EQ(hits, 2) << bad["counts"];
}

}  // namespace
}  // namespace crashkit
