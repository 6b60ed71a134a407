// Placeholder substitution for target argv, workload and checker commands: {data_dir},
// {run_dir}, {ledger}, {cycle}, {scratch}. Unknown braces are left alone, so shell and awk
// code ("${x}", "{print $1}") passes through untouched.
//
//   Placeholders p{.run_dir = "/tmp/r", .data_dir = "/tmp/r/data", .ledger = "...", .cycle = 2};
//   std::string s = p.apply("--dir {data_dir}");  // "--dir /tmp/r/data"
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace crashkit {

struct Placeholders {
  std::string run_dir;
  std::string data_dir;
  std::string scratch;
  std::string ledger;
  int cycle = 0;

  std::string apply(std::string_view text) const;
  std::vector<std::string> apply(const std::vector<std::string>& texts) const;
};

// The environment children get: the harness's own, minus variables that would confuse a
// daemon about its supervisor (an inherited NOTIFY_SOCKET, WATCHDOG_*, LISTEN_*), plus `extra`
// ("KEY=VALUE", overriding).
std::vector<std::string> child_environment(const std::vector<std::string>& extra);

}  // namespace crashkit
