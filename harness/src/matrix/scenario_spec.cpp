// The scenario part of a matrix spec: `scenarios:` and their steps (docs/replicas.md).
#include "cell/net_run.hpp"
#include "crashkit/harness/cell.hpp"
#include "matrix/spec_reader.hpp"

namespace crashkit::detail {

std::vector<MatrixScenario> SpecReader::scenarios(const YAML::Node& n, const CellSpec& base) const {
  if (!n.IsSequence() || n.size() == 0) fail(n, "scenarios must be a list of {name, steps}");
  std::vector<MatrixScenario> out;
  for (const auto& sc : n) {
    known_keys(sc, {"name", "steps"});
    if (!sc["name"] || !sc["steps"] || !sc["steps"].IsSequence())
      fail(sc, "a scenario needs name: and steps: [...]");
    MatrixScenario m{scalar(sc["name"], "name"), {}};
    for (const auto& st : sc["steps"]) m.steps.push_back(step(st, base));
    CellSpec probe = base;
    probe.steps = m.steps;
    if (auto e = group_error(probe)) fail(sc, e->message);
    if (auto e = net_error(probe)) fail(sc, e->message);
    out.push_back(std::move(m));
  }
  return out;
}

ScenarioStep SpecReader::step(const YAML::Node& n, const CellSpec& base) const {
  using Kind = ScenarioStep::Kind;
  ScenarioStep s;
  if (n.IsScalar()) {
    s.text = n.as<std::string>();
    const std::pair<const char*, Kind> words[] = {{"start", Kind::start},
                                                  {"wait_ready", Kind::wait_ready},
                                                  {"workload", Kind::workload},
                                                  {"check", Kind::check}};
    for (auto [word, kind] : words)
      if (s.text == word) s.kind = kind;
    if (s.text != "start" && s.kind == Kind::start)
      fail(n, fmt::format("unknown step '{}' (start, wait_ready, workload, check, {{fault: "
                          "...}}, {{restart: N|all}}, {{sleep: DURATION}}, {{net: ...}})",
                          printable_text(s.text, 60)));
    if (s.kind == Kind::workload && !base.workload) fail(n, "a workload step needs workload:");
    return s;
  }
  if (!n.IsMap() || n.size() != 1) fail(n, "a step is a word or a one-key mapping");
  const auto key = n.begin()->first.as<std::string>();
  if (key == "net") {
    s.kind = Kind::net;
    s.net = net_step(n.begin()->second, s.text, base);  // net_spec.cpp
    return s;
  }
  const std::string value = scalar(n.begin()->second, key.c_str());
  s.text = key + ": " + value;
  if (key == "fault") {
    auto f = Fault::parse(value);
    if (!f) fail(n, f.error().message);
    s.kind = Kind::fault;
    s.fault = *f;
  } else if (key == "restart") {
    s.kind = Kind::restart;
    s.replicas = value;
    if (value != "all" && value.find_first_not_of("0123456789") != std::string::npos)
      fail(n, "restart: takes a replica index or all");
  } else if (key == "sleep") {
    s.kind = Kind::sleep;
    s.pause = duration(n.begin()->second, "sleep");
  } else {
    fail(n, fmt::format("unknown step '{}'", printable_text(key, 60)));
  }
  return s;
}

}  // namespace crashkit::detail
