// SpawnOptions for `/bin/sh -c SCRIPT` with the environment a cell's child gets: the unit tests'
// way to start a small process.
#pragma once

#include <string>

#include "crashkit/harness/child.hpp"
#include "crashkit/harness/placeholders.hpp"

namespace crashkit::test {

inline SpawnOptions sh(const std::string& script) {
  SpawnOptions o;
  o.argv = {"/bin/sh", "-c", script};
  o.env = child_environment({});
  return o;
}

}  // namespace crashkit::test
