// Internal: reading the process tree from /proc (process_tree.cpp).
#pragma once

#include <sys/types.h>

#include <vector>

namespace crashkit {

// The children of every thread of `pid` (/proc/PID/task/TID/children), zombies included.
// Allocates: not for the sentinel or a vfork child.
std::vector<pid_t> children_of(pid_t pid);

}  // namespace crashkit
