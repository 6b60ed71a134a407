// Runs the crashkit CLI (or any binary) as a Child, capturing stdout+stderr, for tests.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "crashkit/harness/child.hpp"
#include "crashkit/harness/output_capture.hpp"
#include "crashkit/harness/placeholders.hpp"

namespace crashkit::test {

struct CliRun {
  ExitStatus status = ExitStatus::exited(-1);
  std::string output;
  int code() const { return status.kind() == ExitStatus::Kind::exited ? status.value() : -1; }
};

inline CliRun run_cli(std::vector<std::string> argv, Duration timeout = std::chrono::minutes(2),
                      const std::vector<std::string>& extra_env = {}) {
  static int counter = 0;
  auto log = std::filesystem::temp_directory_path() /
             ("ck-cli-" + std::to_string(getpid()) + "-" + std::to_string(counter++) + ".log");
  CliRun r;
  auto cap = OutputCapture::open(log, 1 << 20);
  if (!cap) return r;
  auto c = Child::spawn({.argv = std::move(argv),
                         .env = child_environment(extra_env),
                         .stdout_fd = cap->write_fd(),
                         .stderr_fd = cap->write_fd()});
  cap->close_write_end();
  if (!c) {
    r.output = c.error().message;
    return r;
  }
  auto st = c->wait_for(timeout);
  r.status = st ? *st : c->kill_and_reap();
  cap->finish();
  std::error_code ec;
  std::ifstream in(log);
  r.output.assign(std::istreambuf_iterator<char>(in), {});
  std::filesystem::remove(log, ec);
  return r;
}

}  // namespace crashkit::test
