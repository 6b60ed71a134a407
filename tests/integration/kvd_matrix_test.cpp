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

// The correct kvd under `spec`: exit 0, at least `cells` cells, none with a finding.
void expect_no_findings(const std::string& spec, std::size_t cells) {
  int code = -1;
  auto j = run_matrix("", &code, spec);
  EXPECT_EQ(code, 0) << j["counts"];
  EXPECT_GE(j["cells"].size(), cells);
  for (const auto& c : j["cells"])
    EXPECT_FALSE(c["finding"].get<bool>()) << c["id"] << ": " << c["reason"];
}

int cells_with(const nlohmann::json& report, const std::string& outcome) {
  int hits = 0;
  for (const auto& c : report["cells"]) hits += c["outcome"] == outcome;
  return hits;
}

TEST(KvdMatrix, CorrectKvdHasNoFindings) {
  expect_no_findings(kSpec, 51);
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
  EXPECT_GT(cells_with(j, GetParam().outcome), 0)
      << GetParam().bug << " produced no " << GetParam().outcome << ": " << j["counts"];
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
  expect_no_findings(kPowerlossSpec, 10);
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
  EXPECT_GT(cells_with(power, GetParam().outcome), 0)
      << GetParam().bug << " produced no " << GetParam().outcome << ": " << power["counts"];
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
  expect_no_findings(kExhaustionSpec, 2);
}

// Both sides for the exhaustion-only bug: the default matrix (the usual descriptor limit) passes
// it; the same workload under rlimits: {NOFILE: 24} loses acknowledged writes.
TEST(KvdExhaustionMatrix, CheckpointFdLeakPassesTheDefaultMatrixAndIsCaughtUnderALowLimit) {
  int code = -1;
  auto plain = run_matrix("checkpoint-fd-leak", &code);
  EXPECT_EQ(code, 0) << "visible without a limit: " << plain["counts"];
  auto limited = run_matrix("checkpoint-fd-leak", &code, kExhaustionSpec);
  EXPECT_EQ(code, 1);
  EXPECT_GT(cells_with(limited, "violation"), 0) << limited["counts"];
}

// A real full disk (a filled 1 MiB tmpfs) catches enospc-acked, which the default matrix catches
// only through an injected error(ENOSPC); the correct kvd refuses the puts and passes.
TEST(KvdDiskFullMatrix, CatchesEnospcAckedAndPassesTheCorrectKvd) {
  if (geteuid() != 0) GTEST_SKIP() << "mounting the tmpfs needs root";
  expect_no_findings(kDiskFullSpec, 2);
  int code = -1;
  auto bad = run_matrix("enospc-acked", &code, kDiskFullSpec);
  EXPECT_EQ(code, 1);
  EXPECT_EQ(cells_with(bad, "violation"), 2) << bad["counts"];
}

}  // namespace
}  // namespace crashkit
