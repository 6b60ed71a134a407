// A crash matrix built in C++ (no YAML), run by gtest_matrix_test.cpp: kvd with SIGKILL and
// a crash at wal.fsync crossings 3 (reached) and 999 (never reached: a skip). `Broken/...` is
// a spec that cannot load, which must fail as a test rather than abort the binary.
#include <crashkit/testing/gtest.hpp>
#include <filesystem>

namespace {

crashkit::MatrixSpec kvd_spec() {
  const std::string dir = std::filesystem::path(CRASHKIT_KVD).parent_path().string();
  crashkit::MatrixSpec m;
  m.file = "built_matrix.cpp";
  m.base.target = {dir + "/kvd", "--data-dir", "{data_dir}", "--socket", "{run_dir}/kvd.sock"};
  m.base.workload = dir + "/kvd-workload --socket {run_dir}/kvd.sock --ledger {ledger} --count 10";
  m.base.check_online = {dir + "/kvd-verify --socket {run_dir}/kvd.sock --ledger {ledger}"};
  m.base.ready_timeout = m.base.stop_timeout = std::chrono::seconds(10);
  m.faults.push_back({.kind = crashkit::MatrixFault::Kind::sigkill});
  m.faults.push_back({.kind = crashkit::MatrixFault::Kind::crash_points,
                      .points = {"wal.fsync"},
                      .crossings = {3, 999},
                      .phase = crashkit::MatrixFault::Phase::run});
  return m;
}

}  // namespace

CRASHKIT_CRASH_MATRIX(BuiltKvd, crashkit::testing::matrix_spec(kvd_spec));
// The ledger tools from YAML: the crashkit binary is found from a test binary too.
CRASHKIT_CRASH_MATRIX(LedgerFiles,
                      crashkit::testing::matrix_file(CRASHKIT_SOURCE_DIR
                                                     "/tests/testing/ledger_files.yaml"));
CRASHKIT_CRASH_MATRIX(Broken, crashkit::testing::matrix_file("/nonexistent/crashkit-matrix.yaml"));
