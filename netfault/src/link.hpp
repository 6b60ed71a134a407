// Private to crashkit::netfault: a link (one listener) and its connections, each a pair of
// pumps (client -> server "up", server -> client "down"). Everything here runs on the Proxy's
// one I/O thread; only the stats counters are read from other threads.
#pragma once

#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <deque>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "crashkit/netfault/proxy.hpp"

namespace crashkit::net::detail {

namespace asio = boost::asio;
using Protocol = asio::generic::stream_protocol;
using Socket = Protocol::socket;
using Endpoint = Protocol::endpoint;
using Clock = std::chrono::steady_clock;

// "HOST:PORT" (numeric IPv4/IPv6 host) or "unix:PATH"; throws std::invalid_argument.
Endpoint parse_endpoint(const std::string& text);
std::string endpoint_text(const Endpoint& e);
void no_delay(Socket& s);  // TCP_NODELAY on a TCP socket

struct Network;  // the partition and the classifier, shared by every link
struct Link;

struct Chunk {
  std::vector<char> data;
  std::size_t offset = 0;  // bytes of it already forwarded (bandwidth writes it in slices)
  Clock::time_point arrived;
  std::optional<Clock::time_point> due;  // set once (a jitter is drawn once); a refresh clears it
};

class Conn;

// One direction of a connection.
struct Pump {
  Pump(asio::io_context& io, Socket& from, Socket& to, bool up)
      : from(from), to(to), up(up), timer(io) {}
  Socket& from;
  Socket& to;
  const bool up;
  std::deque<Chunk> queue;
  std::size_t queued = 0;
  bool reading = false, writing = false, eof = false, shut = false;
  bool direct = false;  // forward_now is writing out of `buf`: no read into it meanwhile
  std::uint64_t forwarded = 0;
  Clock::time_point next_slot{};    // bandwidth: when the next byte may go
  Clock::time_point arrived_eof{};  // when `from` closed (slow_close counts from here)
  asio::steady_timer timer;         // a chunk's due time, or slow_close
  std::array<char, 65536> buf{};
};

class Conn : public std::enable_shared_from_this<Conn> {
 public:
  Conn(std::shared_ptr<Link> link, Socket client, int source);
  void begin();    // connect upstream, unless the link holds new connections
  void refresh();  // toxics or partition changed: re-arm timers, re-kick both pumps
  void close(bool reset);
  bool closed() const { return closed_; }

 private:
  bool holding() const;
  bool dropping() const;
  void read(Pump& p);
  void kick(Pump& p);
  void write(Pump& p);
  void sent(Pump& p, std::size_t n);
  void counted(Pump& p, std::size_t n);
  void forward_now(Pump& p, std::size_t n);
  void finish(Pump& p);
  void arm_timer();
  std::uint64_t byte_limit(bool& reset) const;

  std::shared_ptr<Link> link_;
  Socket client_, server_;
  const int source_;
  const Clock::time_point opened_ = Clock::now();
  bool connecting_ = false, connected_ = false, closed_ = false;
  asio::steady_timer timer_;  // reset_peer / timeout deadline
  Pump up_, down_;
};

struct Link : std::enable_shared_from_this<Link> {
  Link(asio::io_context& io, std::shared_ptr<Network> net, std::string name, Endpoint to, int dest)
      : io(io),
        acceptor(io),
        net(std::move(net)),
        retry(io),
        name(std::move(name)),
        to(std::move(to)),
        dest(dest) {}
  asio::io_context& io;
  asio::basic_socket_acceptor<Protocol> acceptor;
  std::shared_ptr<Network> net;
  asio::steady_timer retry;  // after an accept error (EMFILE), accept again a little later
  const std::string name;
  const Endpoint to;
  const int dest;
  std::string unix_path;  // removed when the link closes
  std::vector<Toxic> toxics;
  Clock::time_point toxics_since = Clock::now();
  std::vector<std::shared_ptr<Conn>> conns;  // owned here while open (a held one has no I/O)
  std::atomic<std::uint64_t> connections{0}, bytes_up{0}, bytes_down{0}, resets{0}, unattributed{0};

  void accept();
  void refresh();  // every live connection
  void close();
  const Toxic* find(Toxic::Kind k) const;
};

struct Network {
  std::vector<std::vector<int>> groups;  // {}: no partition
  Classifier classify;
  std::mt19937 rng{12345};
  // Whether replica `from` can reach replica `to` (either -1: always).
  bool reachable(int from, int to) const;
};

}  // namespace crashkit::net::detail
