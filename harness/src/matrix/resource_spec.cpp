// The resource-exhaustion part of a matrix spec (docs/resource-limits.md): `rlimits:`.
#include "matrix/spec_reader.hpp"

namespace crashkit::detail {

// rlimits: {NOFILE: 64, AS: 512M} or [NOFILE=64, "AS=512M"]: the target's limits in every cell.
void SpecReader::resources(const YAML::Node& root, CellSpec& base) const {
  const YAML::Node n = root["rlimits"];
  if (!n) return;
  auto add = [&](const YAML::Node& at, const std::string& text) {
    auto l = parse_resource_limit("rlimits", text);
    if (!l) fail(at, l.error().message);
    for (const auto& x : base.rlimits)
      if (x.resource == l->resource) fail(at, fmt::format("rlimits: {} is given twice", text));
    base.rlimits.push_back(*l);
  };
  if (n.IsMap())
    for (const auto& kv : n)
      add(kv.second, kv.first.as<std::string>() + "=" + scalar(kv.second, "rlimits"));
  else if (n.IsSequence())
    for (const auto& x : n) add(x, scalar(x, "rlimits"));
  else
    fail(n, "rlimits must be a mapping {NOFILE: 64} or a list [NOFILE=64]");
}

}  // namespace crashkit::detail
