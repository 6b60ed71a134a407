#include "crashkit/harness/clean_stop.hpp"

#include <fmt/format.h>
#include <signal.h>

#include <algorithm>
#include <cctype>
#include <cstring>

#include "crashkit/crash_protocol.hpp"  // parse_number

namespace crashkit {
namespace {

constexpr int kAlwaysClean[] = {SIGHUP, SIGINT, SIGTERM, SIGPIPE};

// The signal named `word` (SIGINT, INT, any case), or 0.
int signal_by_name(std::string_view word) {
  std::string up;
  for (char c : word) up += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (up.rfind("SIG", 0) == 0) up.erase(0, 3);
  for (int sig = 1; sig < NSIG; ++sig) {
    const char* abbrev = sigabbrev_np(sig);
    if (abbrev != nullptr && up == abbrev) return sig;
  }
  return 0;
}

}  // namespace

Result<int> parse_signal(std::string_view option, std::string_view text) {
  if (auto n = parse_number<int>(text); n && *n >= 1 && *n < NSIG) return *n;
  if (int sig = signal_by_name(text); sig != 0 && !text.empty()) return sig;
  return usage_error(
      fmt::format("{} '{}': not a signal; give a name such as SIGINT or SIGTERM, "
                  "or a number from 1 to {}",
                  option, printable_text(text), NSIG - 1));
}

bool CleanStop::clean(const ExitStatus& s) const {
  if (s.kind() == ExitStatus::Kind::exited)
    return s.value() == 0 || std::find(codes.begin(), codes.end(), s.value()) != codes.end();
  if (s.kind() == ExitStatus::Kind::signaled) {
    const int sig = s.value();
    return std::find(std::begin(kAlwaysClean), std::end(kAlwaysClean), sig) !=
               std::end(kAlwaysClean) ||
           std::find(signals.begin(), signals.end(), sig) != signals.end();
  }
  return false;  // a core dump is never clean (systemd: only with an explicit signal entry)
}

Status CleanStop::add_success(std::string_view option, std::string_view list) {
  std::size_t at = 0;
  bool any = false;
  while (at < list.size()) {
    const std::size_t end = list.find_first_of(" ,\t", at);
    std::string_view word = list.substr(at, end == std::string_view::npos ? end : end - at);
    at = end == std::string_view::npos ? list.size() : end + 1;
    if (word.empty()) continue;
    any = true;
    if (auto n = parse_number<int>(word)) {
      if (*n < 0 || *n > 255)
        return usage_error(
            fmt::format("{} '{}': exit codes run from 0 to 255", option, printable_text(word)));
      if (*n != 0) codes.push_back(*n);
    } else if (int sig = signal_by_name(word); sig != 0) {
      signals.push_back(sig);
    } else {
      return usage_error(fmt::format(
          "{} '{}': give exit codes (0-255) and signal names (SIGUSR1), as SuccessExitStatus= "
          "takes them",
          option, printable_text(word)));
    }
  }
  if (!any) return usage_error(fmt::format("{}: empty; give exit codes and signal names", option));
  return Ok{};
}

std::string CleanStop::success_list() const {
  std::string out;
  for (int c : codes) out += (out.empty() ? "" : " ") + std::to_string(c);
  for (int s : signals) out += (out.empty() ? "" : " ") + signal_name(s);
  return out;
}

std::string CleanStop::describe_clean() const {
  std::string extra = success_list();
  return "exit 0 or death by SIGHUP, SIGINT, SIGTERM or SIGPIPE" +
         (extra.empty() ? std::string() : ", or " + extra);
}

}  // namespace crashkit
