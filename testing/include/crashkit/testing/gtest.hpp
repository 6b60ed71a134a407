// GoogleTest-native crash matrices: a matrix spec (YAML file or C++ builder) becomes one
// value-parameterized test per cell, so ctest lists them, gtest shards them and
// --gtest_filter picks a point or a crossing. A finding fails with its reason and repro line;
// fault_not_reached is a skip.
//
//   CRASHKIT_CRASH_MATRIX(KvdCrash, crashkit::testing::matrix_file("fixtures/kvd/matrix.yaml"));
//   // -> KvdCrash/CrashMatrix.cell/wal_append_after_fsync_at_16, ...
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "crashkit/harness/matrix.hpp"

namespace crashkit::testing {

// Where a matrix comes from. The seed is fixed (default 1) so that listing the tests
// (gtest_discover_tests) and running one of them expand to the same cells.
struct MatrixSource {
  std::function<Result<MatrixSpec>()> load;
  std::uint64_t seed = 1;
};

// A YAML spec; relative paths inside it resolve against the file, as for `crashkit matrix`.
MatrixSource matrix_file(std::filesystem::path spec, std::uint64_t seed = 1);
// A spec built in C++ (MatrixSpec / CellSpec / MatrixFault are plain structs).
MatrixSource matrix_spec(std::function<MatrixSpec()> build, std::uint64_t seed = 1);

// One test: a cell, or (when the spec cannot be loaded or expanded) an error that the test
// reports as a failure instead of aborting the whole binary.
struct MatrixCase {
  std::string name;  // gtest-safe: "sigkill", "wal_append_after_fsync_at_16", ...
  std::shared_ptr<const MatrixCell> cell;
  std::string error;
};
void PrintTo(const MatrixCase& c, std::ostream* os);

// Loads and expands the matrix (running discovery when it needs crossing counts). Called
// while gtest registers tests, from the main thread; it starts the harness sentinel first,
// so daemons are killed even if the test binary is. No shard filter here: gtest shards.
std::vector<MatrixCase> matrix_cases(const MatrixSource& source);
std::string case_name(const ::testing::TestParamInfo<MatrixCase>& info);

// The suite every CRASHKIT_CRASH_MATRIX instantiates; its one test runs the cell.
class CrashMatrix : public ::testing::TestWithParam<MatrixCase> {};

}  // namespace crashkit::testing

// At namespace scope. gtest needs the suite as a plain identifier, hence the namespace block.
#define CRASHKIT_CRASH_MATRIX(name, source)                                              \
  namespace crashkit::testing {                                                          \
  INSTANTIATE_TEST_SUITE_P(name, CrashMatrix, ::testing::ValuesIn(matrix_cases(source)), \
                           case_name);                                                   \
  }                                                                                      \
  static_assert(true, "CRASHKIT_CRASH_MATRIX needs a semicolon")
