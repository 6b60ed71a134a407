// Internal: the harness's one parser of whole numbers from text (notify fields, CLI options).
//
//   parse_number<pid_t>("1234")   // 1234
//   parse_number<int>("12abc")    // nullopt: the whole text must be the number
#pragma once

#include <charconv>
#include <optional>
#include <string_view>
#include <system_error>

namespace crashkit {

// The number `text` spells in base 10, all of it: no sign for unsigned types, no spaces, no
// trailing characters, no overflow.
template <typename T>
std::optional<T> parse_number(std::string_view text) {
  T v{};
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || p != text.data() + text.size()) return std::nullopt;
  return v;
}

}  // namespace crashkit
