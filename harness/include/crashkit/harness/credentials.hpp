// Credentials: a user resolved before forking (uid, gid, supplementary groups), so the
// child can drop privileges with plain syscalls (setgroups/setgid/setuid) between fork and
// exec, where getpwnam/initgroups are not async-signal-safe.
//
//   auto u = crashkit::lookup_user("postgres");  // Result<Credentials>
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

#include "crashkit/harness/result.hpp"

namespace crashkit {

struct Credentials {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
  std::string home;
};

// Usage error if the user does not exist, or if we are not root and it is not ourselves.
Result<Credentials> lookup_user(std::string_view name);

}  // namespace crashkit
