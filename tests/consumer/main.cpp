// Uses all three libraries the way a user's daemon and test would; exits 0 when each works.
// Built with crash points on (the default) the point must be listed; built with them off
// (CRASHKIT_CRASH_POINTS=0) it must have compiled to nothing.
#include <crashkit/crash_point.hpp>
#include <crashkit/crash_point_control.hpp>
#include <crashkit/harness.hpp>  // the harness front door: its whole public API
#include <crashkit/notify.hpp>
#include <cstdio>

int main() {
  CRASHKIT_POINT("consumer.point");
  auto d = crashkit::parse_duration("t", "5s");
  bool listed = false;
  for (const auto& p : crashkit::compiled_crash_points())
    listed = listed || p.name == "consumer.point";
  bool notify_ok = crashkit::notify::ready() == crashkit::notify::NotifySent::no_socket;
  std::printf("crash points %s, consumer.point %s\n", CRASHKIT_CRASH_POINTS ? "on" : "off",
              listed ? "listed" : "absent");
  return d && listed == bool(CRASHKIT_CRASH_POINTS) && notify_ok ? 0 : 1;
}
