// Result<T>: a value or an Error with a one-line message that names the thing and the fix.
// Used at every harness library boundary instead of exceptions (std::expected is C++23).
//
//   Result<Duration> d = parse_duration("200ms");
//   if (!d) { fmt::print(stderr, "{}\n", d.error().message); return 2; }
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace crashkit {

// Which exit-code family an error belongs to (see outcome.hpp for the codes).
enum class ErrorKind {
  usage,    // the user's input is wrong: bad syntax, missing binary, bad path
  harness,  // the harness itself failed: cannot spawn, disk full, socket trouble
};

struct Error {
  ErrorKind kind = ErrorKind::harness;
  std::string message;
};

inline Error usage_error(std::string message) {
  return {ErrorKind::usage, std::move(message)};
}
inline Error harness_error(std::string message) {
  return {ErrorKind::harness, std::move(message)};
}

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  explicit operator bool() const { return v_.index() == 0; }
  bool ok() const { return v_.index() == 0; }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

struct Ok {};
using Status = Result<Ok>;
inline Status ok() {
  return Ok{};
}

}  // namespace crashkit
