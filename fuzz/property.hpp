// What a fuzz target asserts beyond "does not crash": a broken property prints what broke and
// aborts, which libFuzzer reports as a crash and saves the input as a reproducer (README.md,
// "Fuzzing"). Every target also relies on the sanitizers (ASan, UBSan without recovery) and on
// libFuzzer treating an escaped exception as a crash.
//
//   if (reparsed != value) crashkit::fuzz::broken(fmt::format("'{}' re-parsed as '{}'", a, b));
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace crashkit::fuzz {

[[noreturn]] inline void broken(std::string_view property) {
  std::fprintf(stderr, "fuzz property broken: %.*s\n", static_cast<int>(property.size()),
               property.data());
  std::abort();
}

// Error messages are printed as one line naming the thing and the fix (README: "Usage and spec
// errors print one line"): never empty, never a line break in them.
inline void require_one_line_message(std::string_view message, std::string_view parser) {
  if (message.empty()) broken(std::string(parser) + ": empty error message");
  if (message.find('\n') != std::string_view::npos)
    broken(std::string(parser) + ": error message spans lines: " + std::string(message));
}

}  // namespace crashkit::fuzz
