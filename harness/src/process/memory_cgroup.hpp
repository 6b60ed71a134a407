// Private to the harness: MemoryCgroup, the memory limit behind --memory (docs/resource-limits.md).
//
//   auto m = MemoryCgroup::create(256 << 20, daemons);   // daemons: the cell's Containment
//   spawn_options.memory_cgroup_procs = m->procs_fd();     // -1 under cgroup v2
//   ... the daemon runs, maybe is OOM-killed ...
//   if (m->oom_kills() > 0) ...                           // its own reason in the report
//
// Where: cgroup v2, the containment's own cgroup, when crashkit's base may enable the memory
// controller for its children; otherwise a cgroup of its own under crashkit's cgroup in a v1
// memory hierarchy (hybrid systems), which every start joins between fork and exec.
// Thread-safety: one cell's thread.
#pragma once

#include <cstdint>
#include <string>

#include "crashkit/harness/containment.hpp"
#include "crashkit/harness/result.hpp"

namespace crashkit::detail {

class MemoryCgroup {
 public:
  // Errors (usage): no memory cgroup crashkit may create; the message names the fix.
  static Result<MemoryCgroup> create(std::uint64_t bytes, const Containment& box);
  MemoryCgroup(MemoryCgroup&& o) noexcept;
  MemoryCgroup& operator=(MemoryCgroup&&) = delete;
  MemoryCgroup(const MemoryCgroup&) = delete;
  ~MemoryCgroup();  // a v1 cgroup is removed (its members are gone by then)

  int procs_fd() const { return procs_fd_; }  // v1: cgroup.procs (O_WRONLY); v2: -1
  std::uint64_t oom_kills() const;            // processes the OOM killer killed in it
  std::uint64_t peak() const;                 // bytes; 0 where the kernel does not say
  std::string describe() const;               // "cgroup v1 memory limit 16777216 bytes"

 private:
  MemoryCgroup() = default;
  std::string dir_;
  bool v1_ = false;
  bool owned_ = false;  // v1: ours to rmdir
  int procs_fd_ = -1;
  std::uint64_t bytes_ = 0;
};

}  // namespace crashkit::detail
