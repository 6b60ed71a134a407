// The redis-server command line the real-daemon tests run under crashkit: sd_notify
// (--supervised systemd), no TCP port, a unix socket in the run dir, data in the data dir, no
// RDB snapshots. Callers append the persistence they test.
#pragma once

#include <string>
#include <vector>

namespace crashkit::test {

inline const char* kRedisServer = "/usr/bin/redis-server";

inline std::vector<std::string> redis_server_argv() {
  return {kRedisServer,       "--supervised", "systemd",    "--port", "0", "--unixsocket",
          "{run_dir}/r.sock", "--dir",        "{data_dir}", "--save", ""};
}

}  // namespace crashkit::test
