// Network faults in a cell's flows (docs/network.md): the proxy is made before the first
// --prepare (its addresses are placeholders every command may use); the spec's toxics are on
// while each workload runs and off before the checks; a scenario's net steps add toxics,
// partition the group (or isolate one replica) and heal.
#include <fmt/ranges.h>

#include "cell_run.hpp"

namespace crashkit::detail {

std::optional<Verdict> CellRun::setup_net() {
  if (net_ || !NetRun::wanted(spec_)) {
    held_ports_.release();
    return std::nullopt;
  }
  std::vector<Placeholders::Replica*> where;
  for (auto& r : replicas_) where.push_back(&r->where);
  auto n = NetRun::create(spec_, placeholders(0), where, run_.root.string());
  held_ports_.release();
  if (!n) return Verdict{Outcome::harness_error, n.error().message};
  net_ = std::move(*n);
  std::string links;
  for (const auto& [name, addr] : net_->addresses())
    links += fmt::format("{}{} -> {}", links.empty() ? "" : ", ", name, addr);
  say("network links: " + links);
  return std::nullopt;
}

std::optional<Verdict> CellRun::net_on(int cycle) {
  if (!net_ || spec_.net.empty()) return std::nullopt;
  auto said = net_->add(spec_.net);
  if (!said) return Verdict{Outcome::harness_error, said.error().message};
  say(fmt::format("cycle {}: net: {}", cycle, *said));
  return std::nullopt;
}

void CellRun::net_off() {
  if (net_ && !spec_.net.empty()) net_->heal();
}

// net: toxics, a partition or isolate (then, with for:, a wait and the heal), or heal.
std::optional<Verdict> CellRun::step_net(int at, const ScenarioStep& step) {
  const NetStep& n = step.net;
  std::string what;
  if (n.heal) {
    net_->heal();
    step_log(fmt::format("step {}: net: healed (no toxics, no partition)", at));
    return std::nullopt;
  }
  if (!n.toxics.empty()) {
    auto said = net_->add(n.toxics);
    if (!said) return Verdict{Outcome::harness_error, said.error().message};
    what = *said;
  }
  std::vector<std::vector<int>> groups = n.partition;
  if (!n.isolate.empty()) {
    int one = -1;
    if (n.isolate == "leader") {
      auto leader = pick_replicas(at, ReplicaPick{.kind = ReplicaPick::Kind::leader});
      if (!leader) return Verdict{Outcome::harness_error, leader.error().message};
      one = leader->front();
    } else {
      one = *replica_index(n.isolate);  // validated when loaded
    }
    std::vector<int> rest;
    for (int i = 0; i < spec_.replicas; ++i)
      if (i != one) rest.push_back(i);
    groups = {{one}, rest};
  }
  if (!groups.empty()) {
    net_->partition(groups);
    what += fmt::format("{}partition {}", what.empty() ? "" : ", ", groups);
  }
  if (!n.hold) {
    step_log(fmt::format("step {}: net: {}", at, what));
    return all_alive(at);
  }
  rx_.wait([](const NotifyState&) { return false; }, Clock::now() + *n.hold);
  net_->heal();
  step_log(fmt::format("step {}: net: {} for {}, then healed", at, what, format_duration(*n.hold)));
  return all_alive(at);
}

}  // namespace crashkit::detail
