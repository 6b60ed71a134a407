// Uses all three installed libraries; exits 0 when each works.
#include <crashkit/crash_point.hpp>
#include <crashkit/crash_point_control.hpp>
#include <crashkit/harness/duration.hpp>
#include <crashkit/notify.hpp>

int main() {
  CRASHKIT_POINT("consumer.point");
  auto d = crashkit::parse_duration("t", "5s");
  bool listed = false;
  for (const auto& p : crashkit::compiled_crash_points()) listed = listed || p.name == "consumer.point";
  bool notify_ok = crashkit::notify::ready() == crashkit::notify::NotifySent::no_socket;
  return d && listed && notify_ok ? 0 : 1;
}
