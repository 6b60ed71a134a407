// In-process crash injection for unit tests: run `fn`, and make the Nth crossing of `point`
// on this thread throw CrashPointFired. Other threads are not affected, so tests may run in
// parallel. Returns fn's value, or which point fired.
//
//   auto r = crashkit::testing::run_with_crash("wal.append.after_write", 2, [&] { return db.put(k,
//   v); }); if (auto* f = std::get_if<crashkit::testing::Fired>(&r)) { /* reopen, check */ }
#pragma once

#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

#include "crashkit/crash_point_control.hpp"

namespace crashkit::testing {

struct Fired {
  std::string point;
  std::uint64_t crossing;
};

namespace detail {
// Installs / removes this thread's crash scope; begin returns false for an unknown point.
bool begin_scope(const std::string& point, std::uint64_t crossing);
void end_scope();
}  // namespace detail

template <typename Fn>
auto run_with_crash(const std::string& point, std::uint64_t crossing, Fn&& fn)
    -> std::variant<std::conditional_t<std::is_void_v<std::invoke_result_t<Fn>>, std::monostate,
                                       std::invoke_result_t<Fn>>,
                    Fired> {
  using R = std::invoke_result_t<Fn>;
  if (!detail::begin_scope(point, crossing))
    throw std::invalid_argument("run_with_crash: no crash point named '" + point +
                                "' in this binary");
  struct Guard {
    ~Guard() { detail::end_scope(); }
  } guard;
  try {
    if constexpr (std::is_void_v<R>) {
      std::forward<Fn>(fn)();
      return std::monostate{};
    } else {
      return std::forward<Fn>(fn)();
    }
  } catch (const CrashPointFired& f) {
    return Fired{f.point(), f.crossing()};
  }
}

}  // namespace crashkit::testing
