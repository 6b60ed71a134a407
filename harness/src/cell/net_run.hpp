// Internal: a cell's network faults (docs/network.md). NetRun owns the proxy, its links (the
// spec's, plus one in front of each replica's peer port with peer_links), which replica opened
// each connection (for partitions), and the toxics on now. Used from the cell's thread only;
// the proxy's own I/O thread asks owner_of() through the classifier.
#pragma once

#include <sys/types.h>

#include <array>
#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "crashkit/harness/cell.hpp"
#include "crashkit/harness/placeholders.hpp"

namespace crashkit::detail {

// Loopback ports kept bound until release(): a group's replica ports, while the proxies bind
// theirs (port 0 could otherwise hand a proxy a port a replica is about to bind).
class HeldPorts {
 public:
  HeldPorts() = default;
  HeldPorts(HeldPorts&& o) noexcept : fds_(std::exchange(o.fds_, {})) {}
  HeldPorts& operator=(HeldPorts&& o) noexcept {
    release();
    fds_ = std::exchange(o.fds_, {});
    return *this;
  }
  ~HeldPorts() { release(); }
  void hold(int fd) { fds_.push_back(fd); }
  void release();

 private:
  std::vector<int> fds_;
};

class NetRun {
 public:
  // Does the spec use the network at all (links, peer links, toxics or net steps)?
  static bool wanted(const CellSpec& spec);
  // Links listen on loopback (TCP) or next to the target (unix:); `p` resolves their `to:`;
  // peer links set each replica's peer_proxy. Errors name the link.
  static Result<std::unique_ptr<NetRun>> create(const CellSpec& spec, const Placeholders& p,
                                                std::vector<Placeholders::Replica*> replicas,
                                                const std::string& run_dir);
  // {proxy:NAME} values.
  const std::vector<std::pair<std::string, std::string>>& addresses() const { return shown_; }
  // Replica I's main process is now `pid` (0: down); its process tree owns its connections.
  void set_pid(int replica, pid_t pid);
  // Adds toxics to their links ("peers": every peer link); returns what the log says.
  Result<std::string> add(const std::vector<NetToxic>& toxics);
  void partition(std::vector<std::vector<int>> groups);
  void heal();  // no toxics, no partition

 private:
  NetRun() = default;
  std::unique_ptr<net::Proxy> proxy_ = std::make_unique<net::Proxy>();
  std::vector<std::pair<std::string, std::string>> shown_;
  std::vector<std::string> peer_links_;                    // "peer.J", in J order
  std::map<std::string, std::vector<net::Toxic>> active_;  // link -> its toxics now
  std::shared_ptr<std::array<std::atomic<pid_t>, 64>> pids_ =
      std::make_shared<std::array<std::atomic<pid_t>, 64>>();
};

// The replica (index into `pids`, main pids) whose process tree holds the socket connected
// from `peer` (a loopback TCP address as accepted); -1: none, or not TCP.
int owner_of(const void* peer, unsigned len, const std::array<std::atomic<pid_t>, 64>& pids);

// What is wrong with the spec's network faults (an unknown link, a partition without peer
// links, `to:` naming a replica it lacks), as a usage error.
std::optional<Error> net_error(const CellSpec& spec);

}  // namespace crashkit::detail
