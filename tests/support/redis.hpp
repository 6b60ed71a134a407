// The redis-server command line the real-daemon tests run under crashkit: sd_notify
// (--supervised systemd), no TCP port, a unix socket in the run dir, data in the data dir, no
// RDB snapshots. Callers append the persistence they test.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace crashkit::test {

inline const char* kRedisServer = "/usr/bin/redis-server";

inline std::vector<std::string> redis_server_argv() {
  return {kRedisServer,       "--supervised", "systemd",    "--port", "0", "--unixsocket",
          "{run_dir}/r.sock", "--dir",        "{data_dir}", "--save", ""};
}

// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, read back, closed): for a
// daemon under test that needs one. Another process could take it in between; tests accept that.
inline int free_tcp_port() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sa;
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) == 0)
    port = ntohs(sa.sin_port);
  close(fd);
  return port;
}

}  // namespace crashkit::test
