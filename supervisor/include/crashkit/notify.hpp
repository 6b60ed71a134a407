// sd_notify for daemons, through libsystemd: READY, STATUS, STOPPING, RELOADING, WATCHDOG.
// Every call is a no-op returning NotifySent::no_socket when NOTIFY_SOCKET is unset, so the
// same binary runs under systemd, under crashkit, and by hand.
//
//   crashkit::notify::ready();
//   crashkit::notify::status("serving {} keys", n);
//   if (auto iv = crashkit::notify::watchdog_interval()) ...;   // from WATCHDOG_USEC/WATCHDOG_PID
#pragma once

#include <fmt/format.h>

#include <chrono>
#include <optional>
#include <string_view>

namespace crashkit::notify {

enum class NotifySent { sent, no_socket, failed };

// Sends raw "KEY=VALUE\n..." lines. Thread-safe (each call opens its own socket).
NotifySent send(std::string_view message);

inline NotifySent ready() {
  return send("READY=1");
}
inline NotifySent stopping() {
  return send("STOPPING=1");
}
// RELOADING=1 with MONOTONIC_USEC (as Type=notify-reload requires); follow with ready().
NotifySent reloading();
inline NotifySent watchdog() {
  return send("WATCHDOG=1");
}
inline NotifySent watchdog_trigger() {
  return send("WATCHDOG=trigger");
}

template <typename... Args>
NotifySent status(fmt::format_string<Args...> f, Args&&... args) {
  return send("STATUS=" + fmt::format(f, std::forward<Args>(args)...));
}

// The watchdog interval when the service manager expects pings from this process.
std::optional<std::chrono::microseconds> watchdog_interval();

}  // namespace crashkit::notify
