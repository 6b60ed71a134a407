// Placeholder substitution for target argv, workload and checker commands: {data_dir},
// {run_dir}, {ledger}, {cycle}, {scratch}. Unknown braces are left alone, so shell and awk
// code ("${x}", "{print $1}") passes through untouched.
//
// In a group of replicas (docs/replicas.md) also: {replica}, {port}, {peer_port}, {addr},
// {peer_addr} (this replica's, in its target and hooks), {X:I} for replica I's port, peer_port,
// addr, peer_addr, run_dir or data_dir (anywhere), {peers} (the other replicas; in workloads
// and checks: all) and {members} (all), each entry written by `peers_format` and joined by ','.
// With network faults (docs/network.md): {proxy:NAME}, and {peer_addr} names the proxy in front
// of the replica's peer port when peer links are proxied.
//
//   Placeholders p{.run_dir = "/tmp/r", .data_dir = "/tmp/r/data", .ledger = "...", .cycle = 2};
//   std::string s = p.apply("--dir {data_dir}");  // "--dir /tmp/r/data"
#pragma once

#include <optional>
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

  struct Replica {
    int port = 0, peer_port = 0;  // loopback ports, fixed for the whole run
    std::string run_dir, data_dir;
    std::string peer_proxy;  // with peer_links: what {peer_addr} names (the proxy in front)
  };
  std::vector<Replica> replicas;  // empty: not a group
  int replica = -1;               // whose text this is; -1: the group's (workload, checks)
  std::string peers_format = "{peer_addr}";
  // {proxy:NAME}: a proxied link's address (docs/network.md); a unix link's is its path.
  std::vector<std::pair<std::string, std::string>> proxies;

  std::string apply(std::string_view text) const;
  std::vector<std::string> apply(const std::vector<std::string>& texts) const;

 private:
  std::optional<std::string> group_value(std::string_view name) const;
  std::string peer_list(bool others_only) const;
};

// The environment children get: the harness's own, minus variables that would confuse a
// daemon about its supervisor (an inherited NOTIFY_SOCKET, WATCHDOG_*, LISTEN_*), plus `extra`
// ("KEY=VALUE", overriding).
std::vector<std::string> child_environment(const std::vector<std::string>& extra);

}  // namespace crashkit
