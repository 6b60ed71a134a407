// The ledger workload: C clients, each putting unique values in sequence through the user's
// client command, each put recorded pending before and acked after (run_ledger_workload).
#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>
#include <thread>

#include "crashkit/harness/ledger.hpp"
#include "ledger/shell_output.hpp"

namespace crashkit {
namespace {

std::string replaced(std::string command, const std::string& key, const std::string& value) {
  for (auto [name, with] : {std::pair{"{key}", &key}, std::pair{"{value}", &value}})
    for (std::size_t at; (at = command.find(name)) != std::string::npos;)
      command.replace(at, std::strlen(name), *with);
  return command;
}

// A prefix no earlier run wrote: values are never reused, so a value read back names the put
// that wrote it, across cycles and runs sharing one ledger.
std::string run_prefix() {
  auto ns = std::chrono::system_clock::now().time_since_epoch().count();
  return fmt::format("v{:x}{:x}", static_cast<unsigned long long>(ns), getpid() & 0xffff);
}

class Run {
 public:
  Run(const LedgerWorkload& w, int fd) : w_(w), fd_(fd), prefix_(run_prefix()) {}

  void client(int c) {
    for (int n = 1; n <= w_.count && !stop_.load(); ++n) {
      const std::string key =
          w_.keys == 0 ? fmt::format("c{}_{}", c, n) : fmt::format("c{}_k{}", c, (n - 1) % w_.keys);
      const std::string value = fmt::format("{}-{}-{}", prefix_, c, n);
      if (!record("pending", key, value)) return;
      auto r = run_shell_output(replaced(w_.put, key, value));
      if (r && r->status.success()) {
        if (!record("acked", key, value)) return;
        ++acked_;
        continue;
      }
      fail(r ? fmt::format("put of {} {}{}", key, r->status.describe(),
                           r->stderr_line.empty() ? "" : ": " + r->stderr_line)
             : fmt::format("put of {}: {}", key, r.error().message));
      return;
    }
  }

  LedgerWorkloadResult result() const { return {acked_.load(), failure_}; }
  const std::optional<std::string>& ledger_error() const { return ledger_error_; }

 private:
  // One write(2) per line on an O_APPEND fd: lines of concurrent clients never interleave.
  bool record(const char* state, const std::string& key, const std::string& value) {
    const std::string line = fmt::format("{} PUT {} {}\n", state, key, value);
    if (::write(fd_, line.data(), line.size()) == static_cast<ssize_t>(line.size())) return true;
    std::lock_guard lock(mu_);
    if (!ledger_error_)
      ledger_error_ = fmt::format("ledger {}: write failed: {}", w_.ledger.string(),
                                  errno != 0 ? std::strerror(errno) : "short write");
    stop_ = true;
    return false;
  }
  void fail(std::string why) {
    std::lock_guard lock(mu_);
    if (!failure_) failure_ = std::move(why);
    stop_ = true;
  }

  const LedgerWorkload& w_;
  int fd_;
  std::string prefix_;
  std::atomic<bool> stop_{false};
  std::atomic<int> acked_{0};
  std::mutex mu_;
  std::optional<std::string> failure_;
  std::optional<std::string> ledger_error_;
};

}  // namespace

Result<LedgerWorkloadResult> run_ledger_workload(const LedgerWorkload& w) {
  if (w.put.find("{value}") == std::string::npos)
    return usage_error(
        "workload: --put must contain {value} (and usually {key}): the command "
        "that stores VALUE under KEY");
  if (w.count < 1 || w.concurrency < 1 || w.concurrency > 1024 || w.keys < 0)
    return usage_error("workload: --count >= 1, --concurrency 1-1024, --keys >= 0");
  int fd = ::open(w.ledger.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0)
    return usage_error(fmt::format("ledger {}: cannot open it for appending: {}", w.ledger.string(),
                                   std::strerror(errno)));
  Run run(w, fd);
  {
    std::vector<std::jthread> clients;
    for (int c = 0; c < w.concurrency; ++c) clients.emplace_back([&run, c] { run.client(c); });
  }
  ::close(fd);
  if (run.ledger_error()) return harness_error(*run.ledger_error());
  return run.result();
}

}  // namespace crashkit
