// crashkit::netfault: every toxic against a real loopback echo server through the proxy, over
// TCP and a Unix socket: bytes forwarded, timing within tolerance, resets seen as ECONNRESET,
// partitions holding data until they heal. Absence ("nothing arrives") is asserted with a
// bounded poll, never a sleep.
#include "crashkit/netfault/proxy.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

namespace crashkit::net {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

int connect_to(const std::string& addr) {
  if (addr.starts_with("unix:")) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::snprintf(sa.sun_path, sizeof sa.sun_path, "%s", addr.substr(5).c_str());
    if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) return close(fd), -1;
    return fd;
  }
  const auto colon = addr.rfind(':');
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(std::stoi(addr.substr(colon + 1))));
  inet_pton(AF_INET, addr.substr(0, colon).c_str(), &sa.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) return close(fd), -1;
  return fd;
}

// Reads until `want` bytes, EOF, an error or the deadline. errno_out: the read error, if any.
std::string read_for(int fd, std::size_t want, std::chrono::milliseconds limit,
                     int* errno_out = nullptr, bool* eof = nullptr) {
  std::string got;
  const auto end = Clock::now() + limit;
  while (got.size() < want) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now());
    if (left.count() <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    char buf[65536];
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno_out) *errno_out = errno;
      break;
    }
    if (n == 0) {
      if (eof) *eof = true;
      break;
    }
    got.append(buf, static_cast<std::size_t>(n));
  }
  return got;
}

void write_all(int fd, const std::string& s) {
  std::size_t off = 0;
  while (off < s.size()) {
    const ssize_t n = send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    ASSERT_GT(n, 0) << strerror(errno);
    off += static_cast<std::size_t>(n);
  }
}

// An echo server on loopback TCP (or a Unix path): each connection echoes what it reads; a
// line "close\n" makes it reply "bye\n" and close its end.
class EchoServer {
 public:
  explicit EchoServer(const std::string& unix_path = "") {
    if (unix_path.empty()) {
      fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in sa{};
      sa.sin_family = AF_INET;
      sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      socklen_t len = sizeof sa;
      bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
      getsockname(fd_, reinterpret_cast<sockaddr*>(&sa), &len);
      addr_ = "127.0.0.1:" + std::to_string(ntohs(sa.sin_port));
    } else {
      fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_un sa{};
      sa.sun_family = AF_UNIX;
      unlink(unix_path.c_str());
      std::snprintf(sa.sun_path, sizeof sa.sun_path, "%s", unix_path.c_str());
      bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
      addr_ = "unix:" + unix_path;
      path_ = unix_path;
    }
    listen(fd_, 16);
    thread_ = std::thread([this] { serve(); });
  }
  ~EchoServer() {
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    thread_.join();
    for (auto& t : conns_) t.join();
    if (!path_.empty()) unlink(path_.c_str());
  }
  const std::string& addr() const { return addr_; }
  int accepted() const { return accepted_; }

 private:
  void serve() {
    for (;;) {
      int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) return;
      ++accepted_;
      conns_.emplace_back([c] {
        char buf[65536];
        for (ssize_t n; (n = read(c, buf, sizeof buf)) > 0;) {
          if (std::string(buf, static_cast<std::size_t>(n)) == "close\n") {
            (void)!write(c, "bye\n", 4);
            break;
          }
          for (ssize_t off = 0; off < n;) {
            const ssize_t w = write(c, buf + off, static_cast<std::size_t>(n - off));
            if (w <= 0) return (void)close(c);
            off += w;
          }
        }
        close(c);
      });
    }
  }
  int fd_ = -1;
  std::string addr_, path_;
  std::thread thread_;
  std::vector<std::thread> conns_;
  std::atomic<int> accepted_{0};
};

Toxic toxic(Toxic::Kind k, std::chrono::milliseconds t = 0ms, std::uint64_t amount = 0) {
  Toxic x;
  x.kind = k;
  x.time = t;
  x.amount = amount;
  return x;
}

struct Linked {
  EchoServer server;
  Proxy proxy;
  std::string addr = proxy.add_link("client", "127.0.0.1:0", server.addr());
};

TEST(Proxy, ForwardsBothWaysAndCounts) {
  Linked l;
  const int fd = connect_to(l.addr);
  ASSERT_GE(fd, 0);
  const std::string big(1 << 20, 'x');
  std::thread writer([&] { write_all(fd, big); });
  EXPECT_EQ(read_for(fd, big.size(), 10s).size(), big.size());
  writer.join();
  close(fd);
  const LinkStats s = l.proxy.stats("client");
  EXPECT_EQ(s.connections, 1u);
  EXPECT_EQ(s.bytes_up, big.size());
  EXPECT_EQ(s.bytes_down, big.size());
}

TEST(Proxy, LatencyDelaysEachWay) {
  Linked l;
  l.proxy.set_toxics("client", {toxic(Toxic::Kind::latency, 100ms)});
  const int fd = connect_to(l.addr);
  const auto t0 = Clock::now();
  write_all(fd, "ping\n");
  EXPECT_EQ(read_for(fd, 5, 5s), "ping\n");
  const auto took = Clock::now() - t0;
  EXPECT_GE(took, 200ms);  // 100 ms up, 100 ms down
  EXPECT_LT(took, 1s);
  close(fd);
}

TEST(Proxy, BandwidthCapsThroughput) {
  Linked l;
  l.proxy.set_toxics("client", {toxic(Toxic::Kind::bandwidth, 0ms, 64)});  // 64 KB/s
  const int fd = connect_to(l.addr);
  const std::string data(64 * 1024, 'b');
  const auto t0 = Clock::now();
  std::thread writer([&] { write_all(fd, data); });
  EXPECT_EQ(read_for(fd, data.size(), 10s).size(), data.size());
  writer.join();
  const auto took = Clock::now() - t0;
  EXPECT_GE(took, 800ms);  // 64 KB each way at 64 KB/s, pipelined: about 1 s
  EXPECT_LT(took, 3s);
  close(fd);
}

TEST(Proxy, TimeoutDropsThenCloses) {
  Linked l;
  l.proxy.set_toxics("client", {toxic(Toxic::Kind::timeout, 300ms)});
  const int fd = connect_to(l.addr);
  const auto t0 = Clock::now();
  write_all(fd, "ping\n");
  bool eof = false;
  EXPECT_EQ(read_for(fd, 5, 5s, nullptr, &eof), "");
  EXPECT_TRUE(eof);
  EXPECT_GE(Clock::now() - t0, 250ms);
  close(fd);
}

TEST(Proxy, ResetPeerAfterBytesIsEconnreset) {
  Linked l;
  Toxic t = toxic(Toxic::Kind::reset_peer, 0ms, 100);
  t.by_bytes = true;
  l.proxy.set_toxics("client", {t});
  const int fd = connect_to(l.addr);
  write_all(fd, std::string(300, 'r'));
  int err = 0;
  bool eof = false;
  const std::string got = read_for(fd, 300, 5s, &err, &eof);
  EXPECT_EQ(got.size(), 100u);
  EXPECT_EQ(err, ECONNRESET) << strerror(err);
  EXPECT_FALSE(eof);
  EXPECT_EQ(l.proxy.stats("client").resets, 1u);
  close(fd);
}

TEST(Proxy, ResetPeerAtATime) {
  Linked l;
  l.proxy.set_toxics("client", {toxic(Toxic::Kind::reset_peer, 200ms)});
  const int fd = connect_to(l.addr);
  const auto t0 = Clock::now();
  write_all(fd, "ping\n");
  EXPECT_EQ(read_for(fd, 5, 2s), "ping\n");  // before the reset, data flows
  int err = 0;
  read_for(fd, 1, 5s, &err);
  EXPECT_EQ(err, ECONNRESET) << strerror(err);
  EXPECT_GE(Clock::now() - t0, 180ms);
  close(fd);
}

TEST(Proxy, BlackholeHoldsUntilRemoved) {
  Linked l;
  l.proxy.set_toxics("client", {toxic(Toxic::Kind::blackhole)});
  const int fd = connect_to(l.addr);
  ASSERT_GE(fd, 0);  // accepted
  write_all(fd, "ping\n");
  bool eof = false;
  EXPECT_EQ(read_for(fd, 5, 300ms, nullptr, &eof), "");
  EXPECT_FALSE(eof);
  EXPECT_EQ(l.server.accepted(), 0);  // never forwarded, not even the connect
  l.proxy.set_toxics("client", {});
  EXPECT_EQ(read_for(fd, 5, 5s), "ping\n");
  close(fd);
}

TEST(Proxy, SlowCloseDelaysTheClose) {
  Linked l;
  l.proxy.set_toxics("client", {toxic(Toxic::Kind::slow_close, 300ms)});
  const int fd = connect_to(l.addr);
  write_all(fd, "close\n");
  const auto t0 = Clock::now();
  bool eof = false;
  EXPECT_EQ(read_for(fd, 100, 5s, nullptr, &eof), "bye\n");
  EXPECT_TRUE(eof);
  EXPECT_GE(Clock::now() - t0, 250ms);
  close(fd);
}

TEST(Proxy, LimitDataClosesAfterNBytes) {
  Linked l;
  l.proxy.set_toxics("client", {toxic(Toxic::Kind::limit_data, 0ms, 50)});
  const int fd = connect_to(l.addr);
  write_all(fd, std::string(200, 'l'));
  int err = 0;
  bool eof = false;
  EXPECT_EQ(read_for(fd, 200, 5s, &err, &eof).size(), 50u);
  EXPECT_TRUE(eof);  // a close, not a reset
  EXPECT_EQ(err, 0);
  close(fd);
}

TEST(Proxy, PartitionHoldsAcrossGroupsAndHeals) {
  EchoServer server;
  Proxy proxy;
  proxy.set_classifier([](const void*, unsigned) { return 0; });  // every connection: replica 0
  const std::string to1 = proxy.add_link("peer.1", "127.0.0.1:0", server.addr(), 1);
  const int live = connect_to(to1);
  write_all(live, "a\n");
  ASSERT_EQ(read_for(live, 2, 2s), "a\n");
  proxy.set_partition({{0}, {1, 2}});
  write_all(live, "b\n");
  EXPECT_EQ(read_for(live, 2, 300ms), "");  // held, not dropped
  const int fresh = connect_to(to1);
  write_all(fresh, "c\n");
  EXPECT_EQ(read_for(fresh, 2, 300ms), "");
  EXPECT_EQ(server.accepted(), 1);     // the new connection waits upstream of the cut
  proxy.set_partition({{0, 1}, {2}});  // 0 and 1 together: flows
  EXPECT_EQ(read_for(live, 2, 5s), "b\n");
  EXPECT_EQ(read_for(fresh, 2, 5s), "c\n");
  proxy.set_partition({{0}, {1}});
  proxy.set_partition({});  // heal
  write_all(live, "d\n");
  EXPECT_EQ(read_for(live, 2, 5s), "d\n");
  close(live);
  close(fresh);
}

// Partitions and toxics that come and go during a stream never corrupt it: every byte arrives,
// in order (the direct no-toxic path must not read into a buffer it is still writing from).
TEST(Proxy, StreamSurvivesTogglingFaults) {
  EchoServer server;
  Proxy proxy;
  proxy.set_classifier([](const void*, unsigned) { return 0; });
  const std::string addr = proxy.add_link("peer.1", "127.0.0.1:0", server.addr(), 1);
  const int fd = connect_to(addr);
  std::string data(64 << 20, '\0');  // more than every socket buffer on the path holds
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>((i * 7) % 251);
  std::thread writer([&] { write_all(fd, data); });
  // Nothing is read back yet: the socket buffers fill and the proxy's writes stay pending.
  // Once the bytes forwarded stop growing (polled against a deadline), the faults change
  // under those pending writes.
  std::uint64_t last = ~0ull;
  for (const auto end = Clock::now() + 10s; Clock::now() < end;) {
    const std::uint64_t now = proxy.stats("peer.1").bytes_down;
    if (now == last) break;
    last = now;
    pollfd none{-1, 0, 0};
    poll(&none, 1, 50);  // the interval between two samples of a counter, not a synchronisation
  }
  for (int i = 0; i < 5; ++i) {
    proxy.set_partition({{0}, {1}});
    proxy.set_partition({});
    proxy.set_toxics("peer.1", {toxic(Toxic::Kind::latency, 1ms)});
    proxy.set_toxics("peer.1", {});
  }
  const std::string got = read_for(fd, data.size(), 30s);
  writer.join();
  EXPECT_EQ(got.size(), data.size());
  EXPECT_TRUE(got == data) << "the stream was corrupted";
  close(fd);
}

std::size_t open_fds() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
  return n;
}

// A client that gives up on a held connection (a blackhole, or a partition before it
// connected) closes it; the proxy closes its end too instead of holding the fd until a heal.
TEST(Proxy, HeldConnectionsEndWhenTheirClientGivesUp) {
  Linked l;
  l.proxy.set_toxics("client", {toxic(Toxic::Kind::blackhole)});
  const std::size_t before = open_fds();
  for (int i = 0; i < 50; ++i) {
    const int fd = connect_to(l.addr);
    ASSERT_GE(fd, 0);
    close(fd);
  }
  // The proxy accepts and closes asynchronously: both are polled against a deadline.
  const auto deadline = Clock::now() + 5s;
  while (l.proxy.stats("client").connections < 50 && Clock::now() < deadline)
    std::this_thread::yield();
  EXPECT_EQ(l.proxy.stats("client").connections, 50u);
  while (open_fds() > before && Clock::now() < deadline) std::this_thread::yield();
  EXPECT_LE(open_fds(), before);
}

// A connection the classifier ties to no replica (a client's, or one whose process was gone
// before the accept) is cut by a partition like a replica outside every group: letting it
// through would carry a cut-off replica's last writes across.
TEST(Proxy, UnattributedConnectionsAreCutToo) {
  EchoServer server;
  Proxy proxy;
  proxy.set_classifier([](const void*, unsigned) { return -1; });
  const std::string to1 = proxy.add_link("peer.1", "127.0.0.1:0", server.addr(), 1);
  proxy.set_partition({{0}, {1, 2}});
  const int fd = connect_to(to1);
  write_all(fd, "x\n");
  EXPECT_EQ(read_for(fd, 2, 300ms), "");
  EXPECT_EQ(proxy.stats("peer.1").unattributed, 1u);
  proxy.set_partition({});
  EXPECT_EQ(read_for(fd, 2, 5s), "x\n");
  close(fd);
}

TEST(Proxy, UnixSocketsBothSides) {
  const std::string dir = testing::TempDir();
  EchoServer server(dir + "/echo." + std::to_string(getpid()) + ".sock");
  Proxy proxy;
  const std::string listen = "unix:" + dir + "/proxy." + std::to_string(getpid()) + ".sock";
  EXPECT_EQ(proxy.add_link("u", listen, server.addr()), listen);
  proxy.set_toxics("u", {toxic(Toxic::Kind::latency, 50ms)});
  const int fd = connect_to(listen);
  ASSERT_GE(fd, 0);
  const auto t0 = Clock::now();
  write_all(fd, "unix\n");
  EXPECT_EQ(read_for(fd, 5, 5s), "unix\n");
  EXPECT_GE(Clock::now() - t0, 100ms);
  close(fd);
}

TEST(Proxy, BadAddressesThrowNamingThem) {
  Proxy proxy;
  EXPECT_THROW(proxy.add_link("x", "localhost:1", "127.0.0.1:1"), std::invalid_argument);
  EXPECT_THROW(proxy.add_link("x", "127.0.0.1:0", "127.0.0.1:99999"), std::invalid_argument);
  try {
    proxy.add_link("x", "127.0.0.1:0", "nowhere");
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("'nowhere'"), std::string::npos) << e.what();
  }
  EXPECT_THROW(proxy.set_toxics("missing", {}), std::invalid_argument);
}

TEST(Proxy, UpstreamDownClosesTheClient) {
  Proxy proxy;
  EchoServer probe;  // a port that was free: closed with the server below
  std::string dead;
  {
    EchoServer gone;
    dead = gone.addr();
  }
  const std::string addr = proxy.add_link("d", "127.0.0.1:0", dead);
  const int fd = connect_to(addr);
  bool eof = false;
  read_for(fd, 1, 5s, nullptr, &eof);
  EXPECT_TRUE(eof);
  close(fd);
}

}  // namespace
}  // namespace crashkit::net
