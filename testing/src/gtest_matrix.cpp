// The CrashMatrix test body and the expansion of a matrix into gtest parameters.
#include <fmt/format.h>

#include <cstdlib>
#include <map>

#include "crashkit/harness/sentinel.hpp"
#include "crashkit/testing/gtest.hpp"

namespace crashkit::testing {
namespace {

// The CLI's cell id, minus the "_kill" every plain crash cell carries: the and the
// docs' names (KvdCrash/..._at_17) read as "crash here", other actions keep their suffix.
std::string gtest_name(const MatrixCell& cell) {
  std::string name = cell.id;
  const std::string kill = "_kill";
  if (!cell.point.empty() && name.size() > kill.size() &&
      name.compare(name.size() - kill.size(), kill.size(), kill) == 0)
    name.resize(name.size() - kill.size());
  return name;
}

MatrixCase failed_case(std::string error) {
  return {"matrix_error", nullptr, std::move(error)};
}

}  // namespace

MatrixSource matrix_file(std::filesystem::path spec, std::uint64_t seed) {
  return {[spec] { return load_matrix_spec(spec); }, seed};
}

MatrixSource matrix_spec(std::function<MatrixSpec()> build, std::uint64_t seed) {
  return {[build = std::move(build)]() -> Result<MatrixSpec> { return build(); }, seed};
}

void PrintTo(const MatrixCase& c, std::ostream* os) {
  *os << c.name;
  if (c.cell) *os << " (" << fault_label(c.cell->spec) << ")";
}

std::vector<MatrixCase> matrix_cases(const MatrixSource& source) {
  // Registration runs in InitGoogleTest, before any test thread: the fork is safe here.
  if (auto s = start_sentinel(); !s) return {failed_case(s.error().message)};
  static const bool stop_registered = std::atexit(stop_sentinel) == 0;
  (void)stop_registered;
  if (!source.load) return {failed_case("crash matrix: the MatrixSource has no loader")};
  auto spec = source.load();
  if (!spec) return {failed_case(spec.error().message)};
  auto plan = expand_matrix(*spec, {.seed = source.seed});
  if (!plan) return {failed_case(plan.error().message)};
  if (plan->cells.empty())
    return {failed_case(
        fmt::format("crash matrix {}: no cells; add faults to the spec", spec->file.string()))};
  std::vector<MatrixCase> cases;
  std::map<std::string, int> seen;
  for (auto& cell : plan->cells) {
    std::string name = gtest_name(cell);
    if (int n = seen[name]++; n > 0) name += fmt::format("_{}", n + 1);
    cases.push_back({name, std::make_shared<const MatrixCell>(std::move(cell)), {}});
  }
  return cases;
}

std::string case_name(const ::testing::TestParamInfo<MatrixCase>& info) {
  return info.param.name;
}

// A binary may link crashkit::testing for matrix_cases() without instantiating a matrix.
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(CrashMatrix);

TEST_P(CrashMatrix, cell) {
  const MatrixCase& c = GetParam();
  if (!c.cell) FAIL() << c.error;
  const CellSpec& spec = c.cell->spec;
  const std::string repro = repro_line(*c.cell);
  RecordProperty("fault", fault_label(spec));
  RecordProperty("repro", repro);
  auto res = run_cell(spec);
  if (!res) FAIL() << "harness error: " << res.error().message << "\n  repro: " << repro;
  if (auto rec = res->last_recovery())  // as text: an int of microseconds wraps after 35 min
    RecordProperty(
        "recovery_us",
        std::to_string(std::chrono::duration_cast<std::chrono::microseconds>(*rec).count()));
  std::string artifacts =
      res->kept ? fmt::format("\n  artifacts: {}", res->run_dir.string()) : std::string();
  switch (res->outcome) {
    case Outcome::pass:
      return;
    case Outcome::fault_not_reached:
      GTEST_SKIP() << "fault_not_reached: " << res->reason;
    case Outcome::harness_error:
      FAIL() << "harness error: " << res->reason << "\n  repro: " << repro << artifacts;
    default:
      FAIL() << "[" << to_string(res->outcome) << "] " << res->reason << "\n  repro: " << repro
             << artifacts;
  }
}

}  // namespace crashkit::testing
