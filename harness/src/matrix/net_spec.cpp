// The network part of a matrix spec (docs/network.md): `links:`, `peer_links:`, `net:` and a
// scenario's `net:` steps.
#include <fmt/ranges.h>

#include "cell/net_run.hpp"
#include "matrix/spec_reader.hpp"

namespace crashkit::detail {

NetToxic SpecReader::toxic(const YAML::Node& n) const {
  auto t = parse_net_toxic(scalar(n, "net"));
  if (!t) fail(n, t.error().message);
  return *t;
}

// faults: - net: LINK:TOXIC (or a list): a cell with the toxics on during its workload and no
// process fault (Fault::Kind::none); the checks run against the running daemon.
MatrixFault SpecReader::net_fault(const YAML::Node& body) const {
  MatrixFault f;
  f.kind = MatrixFault::Kind::net;
  if (body.IsSequence())
    for (const auto& t : body) f.net.push_back(toxic(t));
  else
    f.net.push_back(toxic(body));
  if (f.net.empty()) fail(body, "net: takes LINK:TOXIC or a list of them");
  return f;
}

// links: {NAME: {to: I|ADDRESS}} (or NAME: ADDRESS); peer_links: true; net: [LINK:TOXIC, ...].
void SpecReader::network(const YAML::Node& root, CellSpec& base) const {
  if (const YAML::Node links = root["links"]; links) {
    if (!links.IsMap()) fail(links, "links must be a mapping NAME: {to: I|HOST:PORT|unix:PATH}");
    for (const auto& kv : links) {
      NetLink l{kv.first.as<std::string>(), ""};
      if (kv.second.IsMap()) {
        known_keys(kv.second, {"to"});
        if (!kv.second["to"]) fail(kv.second, "a link needs to: (a replica index or an address)");
        l.to = scalar(kv.second["to"], "to");
      } else {
        l.to = scalar(kv.second, "links");
      }
      base.links.push_back(std::move(l));
    }
  }
  if (const YAML::Node p = root["peer_links"]; p) {
    const std::string v = scalar(p, "peer_links");
    if (v != "true" && v != "false") fail(p, "peer_links is true or false");
    base.peer_links = v == "true";
  }
  if (const YAML::Node net = root["net"]; net) {
    if (net.IsSequence())
      for (const auto& t : net) base.net.push_back(toxic(t));
    else
      base.net.push_back(toxic(net));
  }
  if (auto e = net_error(base)) fail(root["links"] ? root["links"] : root, e->message);
}

// net: heal | LINK:TOXIC | {toxics: [...], partition: [[0],[1,2]], isolate: I|leader, for: DUR}
NetStep SpecReader::net_step(const YAML::Node& v, std::string& text, const CellSpec& base) const {
  NetStep s;
  if (v.IsScalar()) {
    text = "net: " + v.as<std::string>();
    if (v.as<std::string>() == "heal")
      s.heal = true;
    else
      s.toxics.push_back(toxic(v));
    return s;
  }
  if (!v.IsMap()) fail(v, "net: takes heal, LINK:TOXIC or {toxics, partition, isolate, for}");
  known_keys(v, {"toxics", "partition", "isolate", "for"});
  text = "net:";
  if (const YAML::Node t = v["toxics"]; t) {
    if (t.IsSequence())
      for (const auto& x : t) s.toxics.push_back(toxic(x));
    else
      s.toxics.push_back(toxic(t));
    for (const auto& x : s.toxics) text += " " + x.toxic.text;
  }
  if (const YAML::Node p = v["partition"]; p) {
    if (!p.IsSequence()) fail(p, "partition is a list of groups, e.g. [[0], [1, 2]]");
    std::vector<std::string> groups;
    for (const auto& g : p) {
      if (!g.IsSequence()) fail(g, "each group of a partition is a list of replica indexes");
      std::vector<std::string> members;
      for (const auto& r : g) members.push_back(scalar(r, "partition"));
      groups.push_back(fmt::format("[{}]", fmt::join(members, ",")));
    }
    const std::string written = fmt::format("[{}]", fmt::join(groups, ","));
    auto parsed = parse_partition(written, base.replicas);
    if (!parsed) fail(p, parsed.error().message);
    s.partition = *parsed;
    text += " partition " + written;
  }
  if (const YAML::Node i = v["isolate"]; i) {
    s.isolate = scalar(i, "isolate");
    const auto index = replica_index(s.isolate);
    if (s.isolate != "leader" && (!index || *index >= base.replicas))
      fail(i, fmt::format("isolate: leader, or a replica 0 to {}", base.replicas - 1));
    text += " isolate " + s.isolate;
  }
  if (const YAML::Node f = v["for"]; f) {
    s.hold = duration(f, "for");
    text += " for " + format_duration(*s.hold);
  }
  if (s.toxics.empty() && s.partition.empty() && s.isolate.empty())
    fail(v, "a net step needs toxics:, partition: or isolate: (or is `net: heal`)");
  if (!s.partition.empty() && !s.isolate.empty()) fail(v, "partition: or isolate:, not both");
  return s;
}

}  // namespace crashkit::detail
