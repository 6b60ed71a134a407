// --memory (docs/resource-limits.md): a memory limit on the target's cgroup, v2 or v1.
#include "process/memory_cgroup.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace crashkit::detail {
namespace {

std::atomic<unsigned> g_next{0};

bool write_file(const std::string& path, const std::string& text) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  return ok;
}

// "key N" in a flat-keyed cgroup file (memory.events, memory.oom_control); 0 when absent.
std::uint64_t keyed(const std::string& path, const std::string& key) {
  std::ifstream in(path);
  std::string k;
  std::uint64_t v = 0;
  while (in >> k >> v)
    if (k == key) return v;
  return 0;
}

std::uint64_t number(const std::string& path) {
  std::ifstream in(path);
  std::uint64_t v = 0;
  in >> v;
  return v;
}

// The v1 memory hierarchy's mount point and this process's cgroup in it; empty when none.
std::string v1_own_dir() {
  std::string mount;
  std::ifstream mounts("/proc/self/mounts");
  for (std::string line; std::getline(mounts, line);) {
    std::istringstream f(line);
    std::string dev, dir, type, opts;
    f >> dev >> dir >> type >> opts;
    if (type == "cgroup" && ("," + opts + ",").find(",memory,") != std::string::npos) mount = dir;
  }
  if (mount.empty()) return {};
  std::ifstream self("/proc/self/cgroup");
  for (std::string line; std::getline(self, line);) {
    const auto a = line.find(':'), b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    if (("," + line.substr(a + 1, b - a - 1) + ",").find(",memory,") != std::string::npos)
      return mount + line.substr(b + 1);
  }
  return {};
}

}  // namespace

Result<MemoryCgroup> MemoryCgroup::create(std::uint64_t bytes, const Containment& box) {
  MemoryCgroup m;
  m.bytes_ = bytes;
  const std::string& base = containment_cgroup_base();
  if (box.mode() == Containment::Mode::cgroup && !base.empty() &&
      (write_file(base + "/cgroup.subtree_control", "+memory") ||
       ::access((box.cgroup_dir() + "/memory.max").c_str(), W_OK) == 0) &&
      write_file(box.cgroup_dir() + "/memory.max", std::to_string(bytes))) {
    m.dir_ = box.cgroup_dir();
    return m;
  }
  const std::string own = v1_own_dir();
  if (!own.empty()) {
    m.dir_ = fmt::format("{}/crashkit-{}-{}", own, getpid(), ++g_next);
    if (::mkdir(m.dir_.c_str(), 0755) == 0) {
      m.v1_ = m.owned_ = true;
      m.procs_fd_ = ::open((m.dir_ + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
      if (m.procs_fd_ >= 0 && write_file(m.dir_ + "/memory.limit_in_bytes", std::to_string(bytes)))
        return m;
    }
  }
  return usage_error(fmt::format(
      "--memory {}: no memory cgroup crashkit may create ({}); run crashkit as root, with the "
      "cgroup v2 memory controller delegated to it, or drop --memory (--rlimit AS=SIZE limits "
      "address space without cgroups)",
      bytes, m.dir_.empty() ? "no cgroup v2 memory controller, no v1 memory hierarchy" : m.dir_));
}

MemoryCgroup::MemoryCgroup(MemoryCgroup&& o) noexcept
    : dir_(std::move(o.dir_)),
      v1_(o.v1_),
      owned_(o.owned_),
      procs_fd_(o.procs_fd_),
      bytes_(o.bytes_) {
  o.owned_ = false;
  o.procs_fd_ = -1;
}

MemoryCgroup::~MemoryCgroup() {
  if (procs_fd_ >= 0) ::close(procs_fd_);
  if (owned_) ::rmdir(dir_.c_str());
}

std::uint64_t MemoryCgroup::oom_kills() const {
  return v1_ ? keyed(dir_ + "/memory.oom_control", "oom_kill")
             : keyed(dir_ + "/memory.events", "oom_kill");
}

std::uint64_t MemoryCgroup::peak() const {
  return number(dir_ + (v1_ ? "/memory.max_usage_in_bytes" : "/memory.peak"));
}

std::string MemoryCgroup::describe() const {
  return fmt::format("memory: cgroup {} limit {} bytes, peak {} bytes, {} OOM kill(s)",
                     v1_ ? "v1" : "v2", bytes_, peak(), oom_kills());
}

}  // namespace crashkit::detail
