#include "crashkit/harness/placeholders.hpp"

#include <unistd.h>

#include <array>
#include <charconv>
#include <optional>
#include <string>

#include "crashkit/crash_protocol.hpp"

extern char** environ;

namespace crashkit {

namespace {

std::string address(int port) {
  return "127.0.0.1:" + std::to_string(port);
}

// One replica's own value for `name` (port, peer_port, addr, peer_addr, run_dir, data_dir).
std::optional<std::string> replica_value(const Placeholders::Replica& r, std::string_view name) {
  if (name == "port") return std::to_string(r.port);
  if (name == "peer_port") return std::to_string(r.peer_port);
  if (name == "addr") return address(r.port);
  if (name == "peer_addr") return r.peer_proxy.empty() ? address(r.peer_port) : r.peer_proxy;
  if (name == "run_dir") return r.run_dir;
  if (name == "data_dir") return r.data_dir;
  return std::nullopt;
}

}  // namespace

// {peers}: the replicas other than this one (all of them in the group's own commands);
// {members}: all. Each entry is peers_format with that replica's placeholders.
std::string Placeholders::peer_list(bool others_only) const {
  std::string out;
  for (int j = 0; j < static_cast<int>(replicas.size()); ++j) {
    if (others_only && j == replica) continue;
    Placeholders entry = *this;
    entry.replica = j;
    entry.peers_format.clear();  // an entry never lists peers itself
    out += (out.empty() ? "" : ",") + entry.apply(peers_format);
  }
  return out;
}

// A group placeholder's value, or nullopt to leave the braces alone.
std::optional<std::string> Placeholders::group_value(std::string_view name) const {
  if (name.starts_with("proxy:"))
    for (const auto& [link, addr] : proxies)
      if (name.substr(6) == link) return addr;
  if (replicas.empty()) return std::nullopt;
  if (name == "peers" && !peers_format.empty()) return peer_list(true);
  if (name == "members" && !peers_format.empty()) return peer_list(false);
  if (auto colon = name.find(':'); colon != std::string_view::npos) {
    std::string_view index = name.substr(colon + 1);
    int i = -1;
    auto [end, ec] = std::from_chars(index.data(), index.data() + index.size(), i);
    if (ec != std::errc{} || end != index.data() + index.size() || i < 0 ||
        i >= static_cast<int>(replicas.size()))
      return std::nullopt;
    return replica_value(replicas[i], name.substr(0, colon));
  }
  if (replica < 0 || replica >= static_cast<int>(replicas.size())) return std::nullopt;
  if (name == "replica") return std::to_string(replica);
  if (name == "run_dir" || name == "data_dir") return std::nullopt;  // the table has them
  return replica_value(replicas[replica], name);
}

std::string Placeholders::apply(std::string_view text) const {
  const std::string cycle_text = std::to_string(cycle);
  const std::array<std::pair<std::string_view, const std::string*>, 5> table{{
      {"{data_dir}", &data_dir},
      {"{run_dir}", &run_dir},
      {"{scratch}", &scratch},
      {"{ledger}", &ledger},
      {"{cycle}", &cycle_text},
  }};
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    bool replaced = false;
    if (text[i] == '{') {
      for (auto [name, value] : table) {
        if (text.substr(i, name.size()) == name) {
          out += *value;
          i += name.size();
          replaced = true;
          break;
        }
      }
    }
    if (!replaced && text[i] == '{') {
      auto close = text.find('}', i);
      if (close != std::string_view::npos && close - i < 32) {
        if (auto v = group_value(text.substr(i + 1, close - i - 1))) {
          out += *v;
          i = close + 1;
          replaced = true;
        }
      }
    }
    if (!replaced) out += text[i++];
  }
  return out;
}

std::vector<std::string> Placeholders::apply(const std::vector<std::string>& texts) const {
  std::vector<std::string> out;
  out.reserve(texts.size());
  for (const auto& t : texts) out.push_back(apply(t));
  return out;
}

std::vector<std::string> child_environment(const std::vector<std::string>& extra) {
  auto key_of = [](std::string_view kv) { return kv.substr(0, kv.find('=')); };
  auto dropped = [&](std::string_view key) {
    // The harness's own supervisor's variables, and a cell's crash plan inherited from the
    // harness's environment: only `extra` gives the target its plan.
    if (is_service_manager_variable(key) || is_crash_point_variable(key)) return true;
    for (const auto& e : extra)
      if (key_of(e) == key) return true;
    return false;
  };
  std::size_t n = 0;
  while (environ != nullptr && environ[n] != nullptr) ++n;
  std::vector<std::string> env;
  env.reserve(n + extra.size() + 2);  // + NOTIFY_SOCKET and a marker, added later
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view kv(*e);
    if (!dropped(key_of(kv))) env.emplace_back(kv);
  }
  env.insert(env.end(), extra.begin(), extra.end());
  return env;
}

}  // namespace crashkit
