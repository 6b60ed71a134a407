#include "crashkit/harness/placeholders.hpp"

#include <unistd.h>

#include <array>
#include <string>

#include "crashkit/crash_protocol.hpp"

extern char** environ;

namespace crashkit {

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
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view kv(*e);
    if (!dropped(key_of(kv))) env.emplace_back(kv);
  }
  env.insert(env.end(), extra.begin(), extra.end());
  return env;
}

}  // namespace crashkit
