// The ledger oracle: reading the ledger and judging what a daemon returned (verify_ledger).
#include "crashkit/harness/ledger.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "ledger/shell_output.hpp"

namespace crashkit {
namespace {

// What the ledger says about one key.
struct KeyHistory {
  std::optional<std::string> last_acked;
  std::set<std::string> pending_after;  // pending puts since the last acked one
  std::set<std::string> written;        // every value ever put (pending or acked)
  std::set<std::string> never_acked;    // pending puts no acked line followed
};

struct Ledger {
  std::vector<std::string> order;  // keys in order of first appearance
  std::map<std::string, KeyHistory> keys;
};

Result<Ledger> read_ledger(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in)
    return harness_error(
        fmt::format("ledger {}: cannot read it; did the workload run with "
                    "--ledger pointing there?",
                    path.string()));
  Ledger l;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.empty()) continue;
    std::istringstream ls(line);
    std::string state, op, key, value;
    if (!(ls >> state >> op >> key >> value) || (state != "pending" && state != "acked"))
      return harness_error(fmt::format("ledger {}:{}: not 'pending|acked OP KEY VALUE': '{}'",
                                       path.string(), n, line));
    if (op != "PUT") continue;  // other operations are other checkers' business
    auto [it, fresh] = l.keys.try_emplace(key);
    if (fresh) l.order.push_back(key);
    KeyHistory& h = it->second;
    h.written.insert(value);
    if (state == "pending") {
      h.pending_after.insert(value);
      h.never_acked.insert(value);
    } else {
      h.last_acked = value;
      h.pending_after.clear();
      h.never_acked.erase(value);
    }
  }
  return l;
}

// `late`: a put never acknowledged may have taken effect at any time after it was sent, even
// after a later acknowledged put of the same key (a proposal that timed out at the client and
// committed after the partition healed): its value is then acceptable too.
std::optional<LedgerFinding> judge(const std::string& key, const KeyHistory& h,
                                   const std::optional<std::string>& found, bool late) {
  if (found && (found == h.last_acked || h.pending_after.count(*found) != 0)) return std::nullopt;
  if (found && late && h.never_acked.count(*found) != 0) return std::nullopt;
  if (!found && !h.last_acked) return std::nullopt;  // only pending puts: nothing is fine
  LedgerFinding f{LedgerFinding::Kind::lost, key, h.last_acked.value_or(""), found.value_or("")};
  if (found)
    f.kind =
        h.written.count(*found) != 0 ? LedgerFinding::Kind::stale : LedgerFinding::Kind::phantom;
  return f;
}

std::string with_key(std::string command, const std::string& key) {
  for (std::size_t at; (at = command.find("{key}")) != std::string::npos;)
    command.replace(at, 5, key);
  return command;
}

// The last non-empty line of `text`, trimmed.
std::string trimmed(std::string s) {
  while (!s.empty() &&
         (s.back() == '\n' || s.back() == '\r' || s.back() == ' ' || s.back() == '\t'))
    s.pop_back();
  return s;
}

// The value the daemon holds for each ledger key (nullopt: absent), by one call per key.
Result<std::map<std::string, std::optional<std::string>>> read_by_get(const Ledger& l,
                                                                      const std::string& get) {
  std::map<std::string, std::optional<std::string>> out;
  for (const auto& key : l.order) {
    const std::string cmd = with_key(get, key);
    auto r = run_shell_output(cmd);
    if (!r) return r.error();
    if (!r->status.success())
      return harness_error(fmt::format("verify: --get for key {} {}{}: '{}'", key,
                                       r->status.describe(),
                                       r->stderr_line.empty() ? "" : ": " + r->stderr_line, cmd));
    std::string v = trimmed(r->out);
    out[key] = v.empty() ? std::nullopt : std::optional(v);
  }
  return out;
}

// The same from one --dump call printing "KEY VALUE" lines.
Result<std::map<std::string, std::optional<std::string>>> read_by_dump(const Ledger& l,
                                                                       const std::string& dump) {
  auto r = run_shell_output(dump);
  if (!r) return r.error();
  if (!r->status.success())
    return harness_error(fmt::format("verify: --dump {}{}: '{}'", r->status.describe(),
                                     r->stderr_line.empty() ? "" : ": " + r->stderr_line, dump));
  std::map<std::string, std::optional<std::string>> out;
  for (const auto& key : l.order) out[key] = std::nullopt;
  std::istringstream in(r->out);
  for (std::string line; std::getline(in, line);) {
    std::istringstream ls(line);
    std::string key, value;
    if (!(ls >> key)) continue;
    ls >> value;
    auto it = out.find(key);
    if (it != out.end() && !value.empty()) it->second = value;
  }
  return out;
}

std::string key_list(const std::vector<const LedgerFinding*>& fs) {
  std::string out;
  for (std::size_t i = 0; i < fs.size() && i < 5; ++i) out += (i ? ", " : "") + fs[i]->key;
  if (fs.size() > 5) out += fmt::format(", and {} more", fs.size() - 5);
  return out;
}

}  // namespace

Result<LedgerVerdict> verify_ledger(const LedgerCheck& c) {
  if (c.get.empty() == c.dump.empty())
    return usage_error("verify: give exactly one of --get 'CMD {key}' and --dump 'CMD'");
  auto l = read_ledger(c.ledger);
  if (!l) return l.error();
  auto found = c.get.empty() ? read_by_dump(*l, c.dump) : read_by_get(*l, c.get);
  if (!found) return found.error();
  LedgerVerdict v;
  for (const auto& key : l->order) {
    const KeyHistory& h = l->keys.at(key);
    ++(h.last_acked ? v.acked_keys : v.pending_keys);
    if (auto f = judge(key, h, found->at(key), c.pending_may_land_late)) v.findings.push_back(*f);
  }
  return v;
}

std::string LedgerVerdict::summary() const {
  if (holds())
    return fmt::format(
        "held: {} acked key(s) hold their last acked value or a later pending one; "
        "{} key(s) with only pending puts",
        acked_keys, pending_keys);
  std::vector<const LedgerFinding*> lost, stale, phantom;
  for (const auto& f : findings)
    (f.kind == LedgerFinding::Kind::lost    ? lost
     : f.kind == LedgerFinding::Kind::stale ? stale
                                            : phantom)
        .push_back(&f);
  std::vector<std::string> parts;
  if (!lost.empty())
    parts.push_back(
        fmt::format("lost {} of {} acked ({})", lost.size(), acked_keys, key_list(lost)));
  if (!stale.empty())
    parts.push_back(
        fmt::format("{} acked key(s) hold an older value ({})", stale.size(), key_list(stale)));
  if (!phantom.empty())
    parts.push_back(fmt::format("{} key(s) hold a value never written ({})", phantom.size(),
                                key_list(phantom)));
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : "; ") + p;
  return out;
}

std::vector<std::string> LedgerVerdict::details() const {
  std::vector<std::string> out;
  for (const auto& f : findings) {
    const std::string expected = f.expected.empty() ? "nothing or a pending value" : f.expected;
    const std::string found = f.found.empty() ? "nothing" : f.found;
    out.push_back(fmt::format("{}: expected {}, found {}{}", f.key, expected, found,
                              f.kind == LedgerFinding::Kind::phantom ? " (never written)"
                              : f.kind == LedgerFinding::Kind::stale ? " (an older value)"
                                                                     : ""));
  }
  return out;
}

}  // namespace crashkit
