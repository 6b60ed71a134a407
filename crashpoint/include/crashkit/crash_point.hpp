// Call-site header for crash points. CRASHKIT_POINT marks a durable boundary where a planned
// crash may fire; CRASHKIT_FAULT marks an I/O site that may instead return an injected errno.
// With CRASHKIT_CRASH_POINTS=0 both compile to nothing (CRASHKIT_FAULT to 0). Disarmed, a site
// costs one relaxed load of its own state byte and a predictable branch.
//
//   CRASHKIT_POINT("wal.append.after_write");
//   if (int e = CRASHKIT_FAULT("wal.append.write")) { errno = e; return -1; }
#pragma once

#ifndef CRASHKIT_CRASH_POINTS
#define CRASHKIT_CRASH_POINTS 0
#endif

#if CRASHKIT_CRASH_POINTS
#include <atomic>
#include <cstdint>

namespace crashkit::detail {

// One per call site, constant-initialized into ELF section "crashkit_sites" so the runtime
// can arm sites by name before they are ever reached. Not for direct use.
struct Site {
  constexpr Site(const char* n, char k) : name(n), kind(k) {}
  const char* name;
  char kind;                           // 'P' point, 'F' fault site
  std::atomic<std::uint8_t> state{0};  // non-zero: take the slow path (count / armed / test)
  std::uint64_t* slot = nullptr;       // crossing counter shared by every site of this name
  int rule = -1;                       // index of the plan rule for this point
};

// The slow path: counts the crossing and fires if planned. Returns an injected errno for
// fault sites (0 = none). May throw crashkit::CrashPointFired (action `throw`).
int cross(Site& site);

}  // namespace crashkit::detail

#define CRASHKIT_DETAIL_SITE(kind_str, kind_char, point_name)                             \
  [[gnu::section("crashkit_names"), gnu::used]] static const char ck_name_[] =            \
      kind_str point_name;                                                                \
  [[gnu::section("crashkit_sites"), gnu::used]] static ::crashkit::detail::Site ck_site_{ \
      ck_name_ + 1, kind_char};

#define CRASHKIT_POINT(point_name)                                                \
  do {                                                                            \
    CRASHKIT_DETAIL_SITE("P", 'P', point_name)                                    \
    if (__builtin_expect(ck_site_.state.load(std::memory_order_relaxed) != 0, 0)) \
      ::crashkit::detail::cross(ck_site_);                                        \
  } while (0)

#define CRASHKIT_FAULT(point_name)                                                \
  ([]() -> int {                                                                  \
    CRASHKIT_DETAIL_SITE("F", 'F', point_name)                                    \
    if (__builtin_expect(ck_site_.state.load(std::memory_order_relaxed) != 0, 0)) \
      return ::crashkit::detail::cross(ck_site_);                                 \
    return 0;                                                                     \
  }())

#else

#define CRASHKIT_POINT(point_name) \
  do {                             \
  } while (0)
#define CRASHKIT_FAULT(point_name) 0

#endif
