// crashkit::netfault: an interposed TCP / Unix stream proxy that injects network faults
// (docs/network.md). Each link listens on its own address and forwards every connection to the
// real one; toxics (Toxiproxy's names where they mean the same) and partitions change what
// passes, on live connections too. One I/O thread per Proxy; every method is thread-safe.
//
//   crashkit::net::Proxy proxy;
//   auto addr = proxy.add_link("client", "127.0.0.1:0", "127.0.0.1:6379");  // "127.0.0.1:41234"
//   proxy.set_toxics("client", {{.kind = crashkit::net::Toxic::Kind::latency, .time = 50ms}});
//   proxy.set_partition({{0}, {1, 2}});  // links from replica 0 to 1 and 2 (and back) hold
//   proxy.set_partition({});             // heal: what was held flows again
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace crashkit::net {

// One fault on a link. Timing toxics act on both directions; byte counts (reset_peer with
// `bytes`, limit_data) count what the server sends back (downstream, Toxiproxy's default).
struct Toxic {
  enum class Kind {
    latency,     // each chunk waits `time` (+- `jitter`) before it is forwarded
    bandwidth,   // at most `amount` KB/s each way
    timeout,     // nothing passes (data dropped); the connection closes after `time` (0: never)
    reset_peer,  // RST both ends `time` after the toxic applies, or once `amount` bytes came back
    blackhole,   // connections are accepted and held; nothing passes, nothing closes
    slow_close,  // an end's close reaches the other end `time` late
    limit_data,  // the connection closes once `amount` bytes came back
  };
  Kind kind = Kind::latency;
  std::chrono::milliseconds time{0};
  std::chrono::milliseconds jitter{0};
  std::uint64_t amount = 0;
  bool by_bytes = false;  // reset_peer: `amount` bytes, not `time`
  std::string text;       // as the user wrote it, for logs
};

struct LinkStats {
  std::uint64_t connections = 0;   // accepted
  std::uint64_t bytes_up = 0;      // client -> server, forwarded
  std::uint64_t bytes_down = 0;    // server -> client, forwarded
  std::uint64_t resets = 0;        // connections reset by reset_peer
  std::uint64_t unattributed = 0;  // into a replica's link, tied to no replica by the classifier
};

// Which replica opened a connection (the peer's address as accepted); -1: none (a client).
using Classifier = std::function<int(const void* sockaddr, unsigned len)>;

class Proxy {
 public:
  Proxy();   // starts the I/O thread
  ~Proxy();  // closes every listener and connection, joins the thread
  Proxy(const Proxy&) = delete;
  Proxy& operator=(const Proxy&) = delete;

  // Listens on `listen` ("HOST:PORT", port 0 for any free one, or "unix:PATH") and forwards
  // to `to`. `dest`: the replica behind it (-1: none), for partitions. Returns the address
  // bound; throws std::system_error (or std::invalid_argument for a bad address), naming it.
  std::string add_link(const std::string& name, const std::string& listen, const std::string& to,
                       int dest = -1);
  // Replaces the link's toxics; applies to its live connections and to new ones.
  void set_toxics(const std::string& link, std::vector<Toxic> toxics);
  void clear_toxics();  // every link
  // Groups of replicas that can talk only among themselves; {} heals. A connection from
  // replica I (the classifier's answer) to a link whose dest is J holds while I and J are in
  // different groups; held data flows again on heal, as TCP's retransmits would deliver it.
  // Unlisted replicas, and connections the classifier ties to none, are together, apart from
  // every listed group.
  void set_partition(std::vector<std::vector<int>> groups);
  void set_classifier(Classifier classify);
  LinkStats stats(const std::string& link) const;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace crashkit::net
