// Crash-point runtime: arming from the environment before main(), the slow path, and the
// fire path.
//
// Signal-safety contract: the fire path (fire()) uses only write(2), sendto(2), raise/kill,
// nanosleep, pause and _exit, over data prepared at arm time. It allocates nothing, except
// the `throw` action, which by nature allocates an exception. Arming (before main) allocates
// freely and is single-threaded.
#define CRASHKIT_CRASH_POINTS 1
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "crashkit/crash_point.hpp"
#include "crashkit/crash_point_control.hpp"
#include "crashkit/crash_protocol.hpp"
#include "crashkit/testing/crash.hpp"

using crashkit::detail::Site;

extern "C" {
extern Site __start_crashkit_sites[] __attribute__((weak));
extern Site __stop_crashkit_sites[] __attribute__((weak));
}

namespace crashkit {
namespace {

enum : std::uint8_t { kCount = 1, kArmed = 2, kTest = 4 };

std::vector<CrashRule> g_rules;                 // fixed after arming
std::uint64_t g_local_slots[kCounterCapacity];  // used when there is no counters file
std::vector<std::string> g_slot_names;          // slot index -> point name
std::vector<std::uint64_t*> g_slot_ptrs;
int g_notify_fd = -1;
sockaddr_un g_notify_addr{};
socklen_t g_notify_len = 0;

struct TestScope {
  const char* point = nullptr;  // points into the caller's std::string for the scope's life
  std::uint64_t target = 0;
  std::uint64_t count = 0;
};
thread_local TestScope t_scope;

std::span<Site> sites() {
  if (__start_crashkit_sites == nullptr) return {};
  return {__start_crashkit_sites,
          static_cast<std::size_t>(__stop_crashkit_sites - __start_crashkit_sites)};
}

[[noreturn]] void plan_error(const std::string& message) {
  std::string line = "crashkit: " + message + "\n";
  ssize_t ignored = write(2, line.data(), line.size());
  (void)ignored;
  _exit(kPlanErrorExit);
}

// --- async-signal-safe formatting for the fire path ---
struct Buf {
  char data[320];
  std::size_t len = 0;
  void add(std::string_view s) {
    for (char c : s)
      if (len < sizeof data) data[len++] = c;
  }
  void add_u64(std::uint64_t v) {
    char tmp[24];
    int i = 0;
    do {
      tmp[i++] = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v != 0);
    while (i > 0 && len < sizeof data) data[len++] = tmp[--i];
  }
};

int fire(const Site& s, const CrashRule& r, std::uint64_t crossing) {
  Buf note;
  note.add(kFiredKey);
  note.add("=");
  note.add(s.name);
  note.add("@");
  note.add_u64(crossing);
  if (g_notify_fd >= 0)
    sendto(g_notify_fd, note.data, note.len, MSG_NOSIGNAL,
           reinterpret_cast<sockaddr*>(&g_notify_addr), g_notify_len);
  Buf log;
  log.add("crashkit: crash point ");
  log.add(s.name);
  log.add(" fired at crossing ");
  log.add_u64(crossing);
  log.add(": ");
  log.add(action_name(r.action));
  log.add("\n");
  ssize_t ignored = write(2, log.data, log.len);
  (void)ignored;
  switch (r.action) {
    case CrashRule::Action::kill:
    case CrashRule::Action::powerloss:  // the harness undoes what was not durable
      kill(getpid(), SIGKILL);
      break;
    case CrashRule::Action::abort:
      abort();
    case CrashRule::Action::segv:
      raise(SIGSEGV);
      break;
    case CrashRule::Action::exit:
      _exit(r.code);
    case CrashRule::Action::throw_:
      throw CrashPointFired(s.name, crossing);
    case CrashRule::Action::hang:
      while (true) pause();
    case CrashRule::Action::pause:
      raise(SIGSTOP);
      return 0;  // SIGCONT releases it
    case CrashRule::Action::delay: {
      timespec ts{static_cast<time_t>(r.delay_ns / 1000000000),
                  static_cast<long>(r.delay_ns % 1000000000)};
      while (nanosleep(&ts, &ts) != 0) {
      }
      return 0;
    }
    case CrashRule::Action::error:
      return r.code;
  }
  return 0;
}

std::uint64_t* claim_slot(const char* name, CounterFileHeader* file) {
  for (std::size_t i = 0; i < g_slot_names.size(); ++i)
    if (g_slot_names[i] == name) return g_slot_ptrs[i];
  std::size_t idx = g_slot_names.size();
  if (idx >= kCounterCapacity) plan_error("more than 4096 distinct crash points");
  std::uint64_t* ptr = &g_local_slots[idx];
  if (file != nullptr) {
    auto* entries = reinterpret_cast<CounterEntry*>(file + 1);
    std::strncpy(entries[idx].name, name, sizeof entries[idx].name - 1);
    ptr = &entries[idx].count;
    file->used = static_cast<std::uint32_t>(idx + 1);
  }
  g_slot_names.emplace_back(name);
  g_slot_ptrs.push_back(ptr);
  return ptr;
}

CounterFileHeader* map_counters(const char* path) {
  int fd = open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0)
    plan_error(std::string("CRASHKIT_COUNTERS ") + path + ": cannot open: " + std::strerror(errno));
  void* p = mmap(nullptr, kCounterFileSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (p == MAP_FAILED)
    plan_error(std::string("CRASHKIT_COUNTERS ") + path + ": cannot mmap: " + std::strerror(errno));
  auto* h = static_cast<CounterFileHeader*>(p);
  if (std::memcmp(h->magic, "CKCOUNT1", 8) != 0)
    plan_error(std::string("CRASHKIT_COUNTERS ") + path + ": not a crashkit counters file");
  return h;
}

void open_notify() {
  const char* path = getenv("NOTIFY_SOCKET");
  if (path == nullptr || !unix_address(path, g_notify_addr, g_notify_len)) return;
  g_notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
}

// Runs before main() in every binary that has a crash point (this object is linked in
// because the call sites reference detail::cross).
__attribute__((constructor(101))) void arm_from_environment() {
  const char* counters = getenv("CRASHKIT_COUNTERS");
  CounterFileHeader* file =
      counters != nullptr && *counters != '\0' ? map_counters(counters) : nullptr;
  for (Site& s : sites()) {
    s.slot = claim_slot(s.name, file);
    if (file != nullptr) s.state.fetch_or(kCount, std::memory_order_relaxed);
  }
  const char* plan = getenv("CRASHKIT_PLAN");
  if (plan == nullptr || *plan == '\0') return;
  auto parsed = parse_crash_plan(plan);
  if (auto* err = std::get_if<CrashPlanError>(&parsed)) plan_error(err->message);
  g_rules = std::get<std::vector<CrashRule>>(std::move(parsed));
  for (std::size_t i = 0; i < g_rules.size(); ++i) {
    const CrashRule& r = g_rules[i];
    bool found = false;
    for (Site& s : sites()) {
      if (r.point != s.name) continue;
      found = true;
      if (r.action == CrashRule::Action::error && s.kind != 'F')
        plan_error("CRASHKIT_PLAN rule '" + r.to_string() +
                   "': error(...) needs a CRASHKIT_FAULT "
                   "site, but '" +
                   r.point + "' is a CRASHKIT_POINT; use kill, exit(N), ...");
      s.rule = static_cast<int>(i);
      s.state.fetch_or(kArmed, std::memory_order_relaxed);
    }
    if (!found) {
      std::string known;
      for (const auto& p : compiled_crash_points()) known += (known.empty() ? "" : ", ") + p.name;
      plan_error("CRASHKIT_PLAN: unknown crash point '" + r.point +
                 "'; this binary has: " + (known.empty() ? std::string("none") : known));
    }
  }
  open_notify();
}

}  // namespace

namespace detail {

int cross(Site& s) {
  std::uint8_t st = s.state.load(std::memory_order_relaxed);
  std::uint64_t n =
      std::atomic_ref<std::uint64_t>(*s.slot).fetch_add(1, std::memory_order_relaxed) + 1;
  if ((st & kTest) != 0 && t_scope.point != nullptr && std::strcmp(t_scope.point, s.name) == 0) {
    if (++t_scope.count == t_scope.target) throw CrashPointFired(s.name, t_scope.count);
  }
  if ((st & kArmed) != 0) {
    const CrashRule& r = g_rules[static_cast<std::size_t>(s.rule)];
    if (r.fires_at(n)) return fire(s, r, n);
  }
  return 0;
}

}  // namespace detail

CrashPointFired::CrashPointFired(std::string point, std::uint64_t crossing)
    : std::runtime_error("crash point " + point + " fired at crossing " + std::to_string(crossing)),
      point_(std::move(point)),
      crossing_(crossing) {}

std::vector<CompiledPoint> compiled_crash_points() {
  std::vector<CompiledPoint> out;
  for (const Site& s : sites()) {
    bool seen =
        std::any_of(out.begin(), out.end(), [&](const auto& p) { return p.name == s.name; });
    if (!seen) out.push_back({s.name, s.kind});
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return out;
}

std::uint64_t crash_point_crossings(const std::string& point) {
  for (std::size_t i = 0; i < g_slot_names.size(); ++i)
    if (g_slot_names[i] == point)
      return std::atomic_ref<std::uint64_t>(*g_slot_ptrs[i]).load(std::memory_order_relaxed);
  return 0;
}

namespace testing::detail {

bool begin_scope(const std::string& point, std::uint64_t crossing) {
  bool found = false;
  for (Site& s : sites()) {
    if (point != s.name) continue;
    found = true;
    s.state.fetch_or(kTest, std::memory_order_relaxed);  // stays set: cheap, tests only
  }
  if (found) t_scope = {point.c_str(), crossing, 0};
  return found;
}

void end_scope() {
  t_scope = {};
}

}  // namespace testing::detail

}  // namespace crashkit
