// Linked into the test binaries that run crashkit: each test process works in a TMPDIR of its
// own, removed when the process exits. crashkit keeps the run dir of a failing cell as evidence,
// and these tests fail cells by design (planted bugs), so without this the build's test tmp dir
// grew by a few hundred run dirs per suite run. A test that reads a kept run dir does so before
// it exits. Set before main(), so gtest and every child the tests spawn see it.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace {

struct PrivateTmpdir {
  std::filesystem::path dir;
  PrivateTmpdir() {
    std::error_code ec;
    dir = std::filesystem::temp_directory_path(ec) / ("ck-test-" + std::to_string(getpid()));
    if (ec || !std::filesystem::create_directories(dir, ec)) return;  // keep the inherited one
    setenv("TMPDIR", dir.c_str(), 1);
  }
  ~PrivateTmpdir() {
    std::error_code ec;
    if (!dir.empty()) std::filesystem::remove_all(dir, ec);
  }
};

const PrivateTmpdir private_tmpdir;

}  // namespace
