// Fuzzes what a daemon under test (or anything that can write to its NOTIFY_SOCKET) sends the
// harness: parse_notify_datagram, then apply_notify_message as the receiver folds an accepted
// datagram into its NotifyState.
//
// Properties: a rejection is a usage error of one bounded line (the datagram is quoted at most
// 40 bytes); an accepted datagram has only [A-Z0-9_] keys and no line breaks or NULs in
// its fields, re-serializes to a datagram that parses to the same fields, answers get() with
// the last value of a key, and folds into a state whose values are in range.
#include <fmt/format.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "crashkit/harness/notify_message.hpp"
#include "crashkit/harness/notify_receiver.hpp"
#include "property.hpp"

namespace {

using crashkit::fuzz::broken;

// The longest rejection: the fixed text around 40 quoted bytes, each shown as up to 4
// characters (\xNN), and "...".
constexpr std::size_t kLongestRejection = 64 + 4 * 40 + 3;

void check_rejection(const crashkit::Error& error) {
  if (error.kind != crashkit::ErrorKind::usage) broken("notify: a rejection is not a usage error");
  crashkit::fuzz::require_one_line_message(error.message, "notify");
  if (error.message.size() > kLongestRejection)
    broken(fmt::format("notify: rejection of {} bytes quotes more than 40 bytes: {}",
                       error.message.size(), error.message));
}

bool is_key(std::string_view key) {
  if (key.empty()) return false;
  for (char c : key)
    if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) return false;
  return true;
}

void check_fields(std::string_view datagram, const crashkit::NotifyMessage& m) {
  if (datagram.size() > crashkit::kNotifyDatagramMax) broken("notify: oversized datagram accepted");
  if (m.fields.empty()) broken("notify: accepted a datagram without fields");
  for (const auto& [key, value] : m.fields) {
    if (!is_key(key)) broken(fmt::format("notify: accepted key '{}'", key));
    if (value.find_first_of(std::string_view("\n\0", 2)) != std::string::npos)
      broken(fmt::format("notify: value of {} holds a line break or NUL", key));
  }
}

// KEY=VALUE lines joined again (no longer than the datagram: its empty lines are dropped) must
// parse to the same fields, and get() must see the last one.
void check_reserialized(const crashkit::NotifyMessage& m) {
  std::string again;
  for (const auto& [key, value] : m.fields)
    again += (again.empty() ? "" : "\n") + key + "=" + value;
  auto reparsed = crashkit::parse_notify_datagram(again);
  if (!reparsed) broken("notify: re-serialized datagram rejected: " + reparsed.error().message);
  if (reparsed->fields != m.fields) broken("notify: re-serialized datagram parsed differently");
  for (const auto& [key, value] : m.fields) {
    std::string_view last;
    for (const auto& [k, v] : m.fields)
      if (k == key) last = v;
    if (m.get(key) != last) broken(fmt::format("notify: get({}) is not the last value", key));
  }
}

void check_state(const crashkit::NotifyMessage& m) {
  crashkit::NotifyState state;
  crashkit::apply_notify_message(m, state);
  if (state.main_pid && *state.main_pid <= 0) broken("notify: MAINPID <= 0 accepted");
  // The receiver adds it to the clock: it must be saturated well below overflowing there.
  if (state.extend_timeout && (state.extend_timeout->count() < 0 ||
                               state.extend_timeout->count() > 1'000'000'000'000'000'000))
    broken(fmt::format("notify: EXTEND_TIMEOUT_USEC folded into {} ns, outside 0..1e18",
                       state.extend_timeout->count()));
  std::size_t fired = 0;
  for (const auto& [key, value] : m.fields) fired += key == "X_CRASHKIT_FIRED";
  if (state.fired.size() != fired) broken("notify: X_CRASHKIT_FIRED values lost or invented");
  if (state.ready && !state.ready_at) broken("notify: READY=1 folded without its time");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view datagram(reinterpret_cast<const char*>(data), size);
  auto parsed = crashkit::parse_notify_datagram(datagram);
  if (!parsed) {
    check_rejection(parsed.error());
    return 0;
  }
  check_fields(datagram, *parsed);
  check_reserialized(*parsed);
  check_state(*parsed);
  return 0;
}
