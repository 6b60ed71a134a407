#include "crashkit/notify.hpp"

#include <systemd/sd-daemon.h>
#include <time.h>

#include <cstdlib>
#include <string>

namespace crashkit::notify {

NotifySent send(std::string_view message) {
  const char* sock = std::getenv("NOTIFY_SOCKET");
  if (sock == nullptr || *sock == '\0') return NotifySent::no_socket;
  std::string m(message);
  int r = sd_notify(0, m.c_str());
  return r > 0 ? NotifySent::sent : r == 0 ? NotifySent::no_socket : NotifySent::failed;
}

NotifySent reloading() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  unsigned long long usec = ts.tv_sec * 1000000ULL + ts.tv_nsec / 1000;
  return send("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec));
}

std::optional<std::chrono::microseconds> watchdog_interval() {
  uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) return std::chrono::microseconds(usec);
  return std::nullopt;
}

}  // namespace crashkit::notify
