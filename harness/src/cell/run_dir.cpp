#include "cell/run_dir.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <system_error>

namespace crashkit {

namespace fs = std::filesystem;

Result<RunDir> RunDir::create(const fs::path& dir, std::optional<std::pair<uid_t, gid_t>> owner) {
  RunDir r;
  std::error_code ec;
  if (dir.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    std::string templ = fmt::format("{}/crashkit-XXXXXX", tmp != nullptr && *tmp ? tmp : "/tmp");
    if (mkdtemp(templ.data()) == nullptr)
      return usage_error(
          fmt::format("run dir {}: mkdtemp failed: {}; set TMPDIR to a writable "
                      "directory or pass --run-dir",
                      templ, std::strerror(errno)));
    r.root = templ;
    r.created_by_us = true;
  } else {
    r.root = fs::absolute(dir, ec);
    bool existed = fs::exists(r.root, ec);
    fs::create_directories(r.root, ec);
    if (ec)
      return usage_error(fmt::format("--run-dir {}: cannot create: {}; pick a writable directory",
                                     dir.string(), ec.message()));
    r.created_by_us = !existed;
  }
  r.data = r.root / "data";
  r.scratch = r.root / "scratch";
  r.artifacts = r.root / "artifacts";
  r.ledger = r.root / "ledger";
  r.notify_socket = r.root / "notify.sock";
  for (const auto& d : {r.data, r.scratch, r.artifacts}) {
    fs::create_directories(d, ec);
    if (ec)
      return usage_error(fmt::format("run dir {}: cannot create {}: {}; pick a writable --run-dir",
                                     r.root.string(), d.filename().string(), ec.message()));
  }
  if (access(r.root.c_str(), W_OK) != 0)
    return usage_error(
        fmt::format("run dir {} is not writable; pick another --run-dir", r.root.string()));
  if (owner) {
    for (const auto& d : {r.root, r.data, r.scratch, r.artifacts}) {
      if (chown(d.c_str(), owner->first, owner->second) != 0)
        return usage_error(fmt::format("run dir {}: chown for --user failed: {}", d.string(),
                                       std::strerror(errno)));
    }
  }
  return r;
}

void RunDir::remove_unless_kept(bool keep) const {
  if (keep || !created_by_us || root.empty()) return;
  std::error_code ec;
  fs::remove_all(root, ec);
}

}  // namespace crashkit
