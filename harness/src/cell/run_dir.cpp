#include "cell/run_dir.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <system_error>

namespace crashkit {

namespace fs = std::filesystem;

namespace {

// The absolute, normal form of `dir`, without a trailing '/' (so its parent is its parent).
fs::path normal_absolute(const fs::path& dir, std::error_code& ec) {
  fs::path p = fs::absolute(dir, ec).lexically_normal();
  if (!p.has_filename() && p.has_parent_path() && p != p.root_path()) p = p.parent_path();
  return p;
}

// The outermost of `dir` and its ancestors that does not exist yet; empty if `dir` exists.
fs::path first_missing(const fs::path& dir) {
  fs::path missing;
  std::error_code ec;
  for (fs::path p = dir; !p.empty() && !fs::exists(p, ec) && !ec; p = p.parent_path()) {
    missing = p;
    if (p == p.root_path()) break;
  }
  return missing;
}

}  // namespace

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
    r.created_from = r.root;
  } else {
    r.root = normal_absolute(dir, ec);
    r.created_from = first_missing(r.root);
    fs::create_directories(r.root, ec);
    if (ec) {
      r.remove_unless_kept(false);  // the parents it did create
      return usage_error(fmt::format("--run-dir {}: cannot create: {}; pick a writable directory",
                                     dir.string(), ec.message()));
    }
    r.created_by_us = !r.created_from.empty();
  }
  if (auto e = r.populate(owner)) {
    r.remove_unless_kept(false);
    return *e;
  }
  return r;
}

std::optional<Error> RunDir::populate(std::optional<std::pair<uid_t, gid_t>> owner) {
  std::error_code ec;
  data = root / "data";
  scratch = root / "scratch";
  artifacts = root / "artifacts";
  ledger = root / "ledger";
  notify_socket = root / "notify.sock";
  for (const auto& d : {data, scratch, artifacts}) {
    fs::create_directories(d, ec);
    if (ec)
      return usage_error(fmt::format("run dir {}: cannot create {}: {}; pick a writable --run-dir",
                                     root.string(), d.filename().string(), ec.message()));
  }
  if (access(root.c_str(), W_OK) != 0)
    return usage_error(
        fmt::format("run dir {} is not writable; pick another --run-dir", root.string()));
  if (owner) {
    for (const auto& d : {root, data, scratch, artifacts}) {
      if (chown(d.c_str(), owner->first, owner->second) != 0)
        return usage_error(fmt::format("run dir {}: chown for --user failed: {}", d.string(),
                                       std::strerror(errno)));
    }
  }
  return std::nullopt;
}

void RunDir::remove_unless_kept(bool keep) const {
  if (keep || created_from.empty()) return;
  std::error_code ec;
  if (created_by_us) fs::remove_all(root, ec);
  // The parents made for it, innermost first; rmdir fails on one that is not empty (something
  // else was put there meanwhile), and that one and those above it stay.
  const fs::path stop = created_from.parent_path();
  for (fs::path p = root.parent_path(); !p.empty() && p != stop && p != p.root_path();
       p = p.parent_path()) {
    if (rmdir(p.c_str()) != 0) break;
  }
}

}  // namespace crashkit
