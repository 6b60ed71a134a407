// The resource-exhaustion part of a matrix spec (docs/resource-limits.md): `rlimits:` and
// `disk_full:`.
#include "matrix/spec_reader.hpp"

namespace crashkit::detail {

// rlimits: {NOFILE: 64, AS: 512M} or [NOFILE=64, "AS=512M"]: the target's limits in every cell.
void SpecReader::resources(const YAML::Node& root, CellSpec& base) const {
  disk_full(root["disk_full"], base);
  if (const YAML::Node m = root["memory"]; m) {
    auto bytes = parse_memory_limit("memory", scalar(m, "memory"));
    if (!bytes) fail(m, bytes.error().message);
    base.memory = *bytes;
  }
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

// disk_full: tmpfs:16M (ext4:64M, fs), or {on: tmpfs:16M, free: 4K, fill_at: 20ms | op:K}.
void SpecReader::disk_full(const YAML::Node& n, CellSpec& base) const {
  if (!n) return;
  const YAML::Node on = n.IsMap() ? n["on"] : n;
  if (n.IsMap()) known_keys(n, {"on", "free", "fill_at"});
  if (!on)
    fail(n,
         "disk_full: {on: tmpfs:SIZE, ext4:SIZE or fs, free: BYTES, fill_at: DURATION or "
         "op:K} needs on");
  auto d = parse_disk_full("disk_full", scalar(on, "disk_full"));
  if (!d) fail(on, d.error().message);
  if (n.IsMap() && n["free"]) {
    auto free = parse_byte_size(scalar(n["free"], "free"));
    if (!free) fail(n["free"], "free: give a size in bytes, e.g. 0, 4K, 1M");
    d->free = *free;
  }
  if (n.IsMap() && n["fill_at"])
    if (auto ok = parse_fill_at("fill_at", scalar(n["fill_at"], "fill_at"), *d); !ok)
      fail(n["fill_at"], ok.error().message);
  base.disk_full = *d;
}

}  // namespace crashkit::detail
