#include "crashkit/harness/credentials.hpp"

#include <fmt/format.h>
#include <grp.h>
#include <pwd.h>
#include <unistd.h>

namespace crashkit {

Result<Credentials> lookup_user(std::string_view name) {
  std::string n(name);
  std::vector<char> buf(16384);
  passwd pw{};
  passwd* found = nullptr;
  if (getpwnam_r(n.c_str(), &pw, buf.data(), buf.size(), &found) != 0 || found == nullptr)
    return usage_error(fmt::format("--user {}: no such user; create it or pick another", n));
  if (geteuid() != 0 && pw.pw_uid != geteuid())
    return usage_error(
        fmt::format("--user {}: switching users needs root; run crashkit as root", n));
  Credentials c;
  c.name = n;
  c.uid = pw.pw_uid;
  c.gid = pw.pw_gid;
  c.home = pw.pw_dir != nullptr ? pw.pw_dir : "/";
  int count = 64;
  c.groups.resize(static_cast<std::size_t>(count));
  if (getgrouplist(n.c_str(), c.gid, c.groups.data(), &count) < 0) {
    c.groups.resize(static_cast<std::size_t>(count));
    getgrouplist(n.c_str(), c.gid, c.groups.data(), &count);
  }
  c.groups.resize(static_cast<std::size_t>(count));
  return c;
}

}  // namespace crashkit
