// What the network-fault proxy costs a link with no toxics: a loopback echo server, one client
// streaming through it (a writer thread and a reader), direct and through crashkit::net::Proxy,
// interleaved in rounds so machine noise hits both alike. Also the round trip of a small
// request, the shape of most workloads' traffic. Prints the medians and the proxied throughput
// against the direct one (goal >= 0.90: the proxy costs at most 10%).
//
//   proxy_throughput [ROUNDS] [MB]   (defaults 7 and 64)
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "crashkit/netfault/proxy.hpp"

namespace {

using Clock = std::chrono::steady_clock;

int listen_loopback(int& port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sa;
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || listen(fd, 16) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) != 0) {
    std::perror("proxy_throughput: listen");
    std::exit(1);
  }
  port = ntohs(sa.sin_port);
  return fd;
}

int connect_to(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    std::perror("proxy_throughput: connect");
    std::exit(1);
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

// Echoes every connection until it closes.
void echo_server(int lfd) {
  for (;;) {
    int c = accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) return;
    std::thread([c] {
      int one = 1;
      setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      std::vector<char> buf(1 << 16);
      for (ssize_t n; (n = read(c, buf.data(), buf.size())) > 0;)
        for (ssize_t off = 0; off < n;) {
          ssize_t w = write(c, buf.data() + off, static_cast<std::size_t>(n - off));
          if (w <= 0) return (void)close(c);
          off += w;
        }
      close(c);
    }).detach();
  }
}

// MB/s of `mb` megabytes sent and echoed back through `port`.
double stream_mb_s(int port, int mb) {
  const int fd = connect_to(port);
  const std::size_t total = static_cast<std::size_t>(mb) << 20;
  const auto t0 = Clock::now();
  std::thread writer([&] {
    std::vector<char> buf(1 << 16, 'x');
    for (std::size_t sent = 0; sent < total;) {
      ssize_t n = write(fd, buf.data(), std::min(buf.size(), total - sent));
      if (n <= 0) std::exit(1);
      sent += static_cast<std::size_t>(n);
    }
  });
  std::vector<char> buf(1 << 16);
  for (std::size_t got = 0; got < total;) {
    ssize_t n = read(fd, buf.data(), buf.size());
    if (n <= 0) std::exit(1);
    got += static_cast<std::size_t>(n);
  }
  writer.join();
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  close(fd);
  return mb / s;
}

// Microseconds per 64-byte request and its echo, over 2000 round trips.
double round_trip_us(int port) {
  const int fd = connect_to(port);
  char msg[64] = {};
  const int n = 2000;
  const auto t0 = Clock::now();
  for (int i = 0; i < n; ++i) {
    if (write(fd, msg, sizeof msg) != sizeof msg) std::exit(1);
    for (std::size_t got = 0; got < sizeof msg;) {
      ssize_t r = read(fd, msg + got, sizeof msg - got);
      if (r <= 0) std::exit(1);
      got += static_cast<std::size_t>(r);
    }
  }
  const double us = std::chrono::duration<double, std::micro>(Clock::now() - t0).count() / n;
  close(fd);
  return us;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 7;
  const int mb = argc > 2 ? std::atoi(argv[2]) : 64;
  if (rounds < 1 || mb < 1) {
    std::fprintf(stderr, "proxy_throughput: usage: proxy_throughput [ROUNDS >= 1] [MB >= 1]\n");
    return 2;
  }
  int port = 0;
  const int lfd = listen_loopback(port);
  std::thread(echo_server, lfd).detach();
  crashkit::net::Proxy proxy;
  const std::string at =
      proxy.add_link("bench", "127.0.0.1:0", "127.0.0.1:" + std::to_string(port));
  const int proxied = std::stoi(at.substr(at.rfind(':') + 1));
  std::vector<double> direct, through, rt_direct, rt_through;
  for (int i = 0; i < rounds; ++i) {
    direct.push_back(stream_mb_s(port, mb));
    through.push_back(stream_mb_s(proxied, mb));
    rt_direct.push_back(round_trip_us(port));
    rt_through.push_back(round_trip_us(proxied));
  }
  const double d = median(direct), p = median(through);
  std::printf("loopback echo, %d MB each way per run, %d rounds\n", mb, rounds);
  std::printf("  direct          : median %.0f MB/s\n", d);
  std::printf("  through proxy   : median %.0f MB/s\n", p);
  std::printf("  ratio           : %.2f (goal >= 0.90)\n", p / d);
  std::printf("  64 B round trip : direct %.1f us, through proxy %.1f us\n", median(rt_direct),
              median(rt_through));
  return 0;
}
