// Lists the crash points compiled into a binary without running it: every call site leaves
// "<kind><name>\0" in the ELF section "crashkit_names", which this reads from the file.
//
//   auto pts = crashkit::read_compiled_points("build/fixtures/pointd");
//   for (auto& p : *pts) fmt::print("{} {}\n", p.kind == 'F' ? "fault" : "point", p.name);
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "crashkit/harness/result.hpp"

namespace crashkit {

struct PointName {
  std::string name;
  char kind;  // 'P' CRASHKIT_POINT, 'F' CRASHKIT_FAULT
  friend bool operator==(const PointName&, const PointName&) = default;
};

// Sorted, deduplicated. An ELF file without crash points gives an empty list; a file that is
// not a 64-bit ELF is a usage error naming the file.
Result<std::vector<PointName>> read_compiled_points(const std::filesystem::path& binary);

}  // namespace crashkit
