// Bad input gets one line naming the thing and the fix, and exit 2: never an abort, a wrapped
// number or a silently accepted zero.
#include <gtest/gtest.h>

#include <algorithm>

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
        BadInput{{"run", "--plan", "p@1=delay(18446744074s)", "--", "TARGET"}, "bad delay"}),
    [](const auto& info) { return "case" + std::to_string(info.index); });

}  // namespace
}  // namespace crashkit
