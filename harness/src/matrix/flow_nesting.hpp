// Internal (not installed): how deep YAML flow collections ([...], {...}) nest, found without
// yaml-cpp. yaml-cpp keeps a token per '[' before its own depth guard sees any (10 MB of '['
// took 10 s and 2.4 GB), so a matrix spec's nesting is checked on the text first.
//
//   if (int line = line_nested_deeper(text, 32)) fail(line, "nested deeper than 32 levels");
#pragma once

#include <string_view>

namespace crashkit {

// The 1-based line where flow collections first nest deeper than `limit`, or 0 if they never
// do. Brackets in comments, quoted scalars, block scalars (| and >) and block-context plain
// words ("test [ -f x ]") do not count. It never counts less than a YAML parser would: where it
// cannot tell (a quoted scalar left open at the end of a line), it counts the brackets.
int line_nested_deeper(std::string_view yaml, int limit);

}  // namespace crashkit
