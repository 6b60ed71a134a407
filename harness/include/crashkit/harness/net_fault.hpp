// Network faults in a cell (docs/network.md): links proxied by crashkit::netfault, the toxics
// applied to them, and partitions of a group. The grammar; CellRun applies them.
//
//   auto t = crashkit::parse_net_toxic("client:latency(50ms,10ms)");  // link "client"
//   auto p = crashkit::parse_partition("[[0],[1,2]]", 3);
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "crashkit/harness/duration.hpp"
#include "crashkit/harness/result.hpp"
#include "crashkit/netfault/proxy.hpp"

namespace crashkit {

// A proxied link: `{proxy:NAME}` listens, forwarding to `to`: a replica index ("0": that
// replica's {addr}) or an address with placeholders ("127.0.0.1:6379", "unix:{run_dir}/s.sock").
struct NetLink {
  std::string name;
  std::string to;
};

// LINK:TOXIC. LINK is a link's name, "peer.J" (the peer link into replica J, with peer_links),
// or "peers" (every peer link). TOXIC: latency(DUR[,JITTER]) bandwidth(KB_PER_S)
// timeout[(DUR)] reset_peer[(DUR|BYTES B)] blackhole slow_close(DUR) limit_data(BYTES).
struct NetToxic {
  std::string link;
  net::Toxic toxic;  // toxic.text: as written, "client:latency(50ms)"
};
Result<NetToxic> parse_net_toxic(std::string_view text);

// "[[0],[1,2]]": groups of replica indexes, each of 0..replicas-1 at most once.
Result<std::vector<std::vector<int>>> parse_partition(std::string_view text, int replicas);

// A scenario's `net:` step: toxics on, a partition (or `isolate: I|leader`), or `heal`; with
// `for: DUR` it heals by itself after DUR (the step waits).
struct NetStep {
  std::vector<NetToxic> toxics;
  std::vector<std::vector<int>> partition;
  std::string isolate;  // "leader" or an index; empty: none
  bool heal = false;
  std::optional<Duration> hold;
};

}  // namespace crashkit
