// Bad input gets one line naming the thing and the fix, and exit 2: never an abort, a wrapped
// number or a silently accepted zero.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "../support/cli_runner.hpp"

namespace crashkit {
namespace {

const std::string kCli = CRASHKIT_CLI;
const std::string kNotify = CRASHKIT_NOTIFY_FIXTURE;
const std::string kSpec = CRASHKIT_SOURCE_DIR "/fixtures/kvd/matrix.yaml";

struct BadInput {
  std::vector<std::string> args;
  const char* says;  // the line must contain this
};

class CliBadInput : public ::testing::TestWithParam<BadInput> {};

TEST_P(CliBadInput, IsOneLineAndExitTwo) {
  std::vector<std::string> argv{kCli};
  for (const auto& a : GetParam().args) argv.push_back(a == "TARGET" ? kNotify : a);
  auto r = test::run_cli(argv);
  EXPECT_EQ(r.code(), 2) << r.output;
  EXPECT_NE(r.output.find(GetParam().says), std::string::npos) << r.output;
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
}

INSTANTIATE_TEST_SUITE_P(
    Cli, CliBadInput,
    ::testing::Values(
        BadInput{{"matrix", "/tmp"}, "not a regular file (a directory?)"},
        BadInput{{"matrix", "/nonexistent/m.yaml"}, "no such file"},
        BadInput{{"matrix", "-j0", kSpec}, "'0' is not a whole number from 1 to 1000000"},
        BadInput{{"run", "--cycles", "0", "--", "TARGET"}, "'0' is not a whole number"},
        BadInput{{"run", "--cycles", "-1", "--", "TARGET"}, "'-1' is not a whole number"},
        BadInput{{"run", "--cycles", "abc", "--", "TARGET"}, "'abc' is not a whole number"},
        BadInput{{"run", "--seed", "-5", "--", "TARGET"}, "--seed '-5': give a whole number"},
        BadInput{{"run", "--ready-timeout", "0s", "--", "TARGET"},
                 "a timeout must be longer than 0"},
        // Past what poll() holds: 4294968s wrapped to 0.7 s, a false "SIGTERM ignored".
        BadInput{{"run", "--fault", "sigterm", "--stop-timeout", "4294968s", "--", "TARGET"},
                 "--stop-timeout 4294968s: a timeout must be longer than 0 and at most 576h"},
        BadInput{{"run", "--command-timeout", "577h", "--", "TARGET"}, "at most 576h"},
        BadInput{{"run", "--ready-timeout", "35000m", "--", "TARGET"}, "at most 576h"},
        BadInput{{"run", "--plan", "p@1=delay(18446744074s)", "--", "TARGET"}, "bad delay"},
        // Quoted text stays on its line: a line break in a value is shown as \x0a.
        BadInput{{"run", "--ready-timeout", "5\ns", "--", "TARGET"}, "bad duration '5\\x0as'"},
        BadInput{{"run", "--fault", "sig\nkill", "--", "TARGET"}, "--fault 'sig\\x0akill'"}),
    [](const auto& info) { return "case" + std::to_string(info.index); });

// A matrix spec that is wrong in content, not in syntax: still FILE:LINE, one line, exit 2.
struct BadSpec {
  std::string yaml;
  const char* says;  // the line must contain this
};

class SpecBadInput : public ::testing::TestWithParam<BadSpec> {};

TEST_P(SpecBadInput, IsOneLineAndExitTwo) {
  auto file = std::filesystem::temp_directory_path() /
              ("ck-bad-spec-" + std::to_string(getpid()) + ".yaml");
  std::ofstream(file) << GetParam().yaml;
  auto r = test::run_cli({kCli, "matrix", file.string()});
  std::filesystem::remove(file);
  EXPECT_EQ(r.code(), 2) << r.output;
  EXPECT_NE(r.output.find(GetParam().says), std::string::npos) << r.output;
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
}

std::string repeated(const std::string& s, std::size_t n) {
  std::string out;
  for (std::size_t i = 0; i < n; ++i) out += s;
  return out;
}

INSTANTIATE_TEST_SUITE_P(
    Matrix, SpecBadInput,
    ::testing::Values(
        // The key's line, not "line 0" (yaml-cpp's InvalidNode carries no mark).
        BadSpec{"target: [x]\nfaults:\n  - crash_points:\n      crossings: {}\n",
                ".yaml:4: crossings: {sample: N} needs sample"},
        // Size and nesting are capped before yaml-cpp, which keeps a token per '[' (a 10 MB
        // file of them took 10 s and 2.4 GB).
        BadSpec{std::string(3 << 19, '['), "over the 1 MiB limit"},
        BadSpec{"target: [x]\nfaults:\n  - " + std::string(100, '[') + std::string(100, ']'),
                ".yaml:3: nested deeper than 32 levels"},
        // Brackets in comments and quoted scalars do not count: the line is the real one.
        BadSpec{"# " + std::string(40, '[') + "\ntarget: ['" + std::string(40, '[') + "', \"" +
                    std::string(40, '{') + "\"]\nfaults:\n  - " + std::string(40, '[') + "\n",
                ".yaml:4: nested deeper than 32 levels"},
        // Block nesting is bounded by yaml-cpp itself; its error says so, with the line.
        BadSpec{"target: [x]\nfaults:\n" + repeated("- ", 1000) + "x\n",
                ".yaml:3: nested deeper than the YAML parser allows"},
        // A key with a line break in it is quoted escaped, on one line.
        BadSpec{"target: [x]\n\"a\\nb\": 1\n", "unknown key 'a\\x0ab'"}),
    [](const auto& info) { return "case" + std::to_string(info.index); });

}  // namespace
}  // namespace crashkit
