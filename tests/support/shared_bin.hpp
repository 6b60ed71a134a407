// A copy of a build-tree binary that another user can run: tests that pass --user run the
// target and commands as that user, and the build tree may sit below a directory only its owner
// can enter (a clean clone under mktemp -d, a home directory). The copy lives in
// /tmp/ck-bin-<pid>/, mode 0755, for the life of the test process.
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>

namespace crashkit::test {

inline std::string shared_copy(const std::string& binary) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path("/tmp") / ("ck-bin-" + std::to_string(getpid()));
  fs::create_directories(dir);
  ::chmod(dir.c_str(), 0755);
  const fs::path to = dir / fs::path(binary).filename();
  fs::copy_file(binary, to, fs::copy_options::overwrite_existing);
  ::chmod(to.c_str(), 0755);
  static const struct Cleanup {
    fs::path dir;
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
  } cleanup{dir};
  return to.string();
}

}  // namespace crashkit::test
