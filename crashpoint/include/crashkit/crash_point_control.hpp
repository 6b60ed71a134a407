// Control side of crash points inside a process: what fired, which points this binary has,
// and the exception the `throw` action raises. The runtime arms itself from CRASHKIT_PLAN and
// CRASHKIT_COUNTERS once, before main(); a bad plan prints one line and exits kPlanErrorExit.
//
//   for (auto& p : crashkit::compiled_crash_points()) std::puts(p.name.c_str());
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace crashkit {

// Thrown by the `throw` action and by testing::run_with_crash.
class CrashPointFired : public std::runtime_error {
 public:
  CrashPointFired(std::string point, std::uint64_t crossing);
  const std::string& point() const { return point_; }
  std::uint64_t crossing() const { return crossing_; }

 private:
  std::string point_;
  std::uint64_t crossing_;
};

struct CompiledPoint {
  std::string name;
  char kind;  // 'P' CRASHKIT_POINT, 'F' CRASHKIT_FAULT
};

// Every crash point compiled into this executable (deduplicated, sorted).
std::vector<CompiledPoint> compiled_crash_points();

// Crossings of `point` counted in this process since start (0 if never crossed or unknown).
std::uint64_t crash_point_crossings(const std::string& point);

}  // namespace crashkit
