// The shared protocol pieces: the counters file (created and read by the harness, mapped by the
// daemon's runtime), variable ownership, and sd_notify addresses. Nothing here runs before main.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstring>

#include "crashkit/crash_protocol.hpp"

namespace crashkit {

bool is_crash_point_variable(std::string_view key) {
  return key == kPlanVariable || key == kCountersVariable;
}

bool is_service_manager_variable(std::string_view key) {
  return key == "NOTIFY_SOCKET" || key.starts_with("WATCHDOG_") || key.starts_with("LISTEN_");
}

bool unix_address(std::string_view address, sockaddr_un& out, socklen_t& len) {
  if (address.empty() || address.size() >= sizeof out.sun_path) return false;
  out = {};
  out.sun_family = AF_UNIX;
  std::memcpy(out.sun_path, address.data(), address.size());
  const bool abstract = address[0] == '@';
  if (abstract) out.sun_path[0] = '\0';
  len =
      static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address.size() + (abstract ? 0 : 1));
  return true;
}

std::string printable_text(std::string_view text, std::size_t max_bytes) {
  constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : text.substr(0, max_bytes)) {
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    }
  }
  if (text.size() > max_bytes) out += "...";
  return out;
}

bool create_crash_counters(const std::string& path) {
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  CounterFileHeader h{};
  std::memcpy(h.magic, "CKCOUNT1", 8);
  h.capacity = kCounterCapacity;
  bool ok = ftruncate(fd, static_cast<off_t>(kCounterFileSize)) == 0 &&
            pwrite(fd, &h, sizeof h, 0) == static_cast<ssize_t>(sizeof h);
  int e = errno;
  close(fd);
  errno = e;
  return ok;
}

std::map<std::string, std::uint64_t> read_crash_counters(const std::string& path) {
  std::map<std::string, std::uint64_t> out;
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  void* p = mmap(nullptr, kCounterFileSize, PROT_READ, MAP_SHARED, fd, 0);
  close(fd);
  if (p == MAP_FAILED) return out;
  const auto* h = static_cast<const CounterFileHeader*>(p);
  if (std::memcmp(h->magic, "CKCOUNT1", 8) == 0) {
    const auto* e = reinterpret_cast<const CounterEntry*>(h + 1);
    std::uint32_t used = std::min(h->used, kCounterCapacity);
    for (std::uint32_t i = 0; i < used; ++i) {
      std::string name(e[i].name, strnlen(e[i].name, sizeof e[i].name));
      out[name] = std::atomic_ref<const std::uint64_t>(e[i].count).load(std::memory_order_relaxed);
    }
  }
  munmap(p, kCounterFileSize);
  return out;
}

}  // namespace crashkit
