// CleanStop: how the harness stops a daemon cleanly and judges how it ended, the way systemd
// does for a unit: KillSignal= (the signal sent; SIGTERM) and SuccessExitStatus= (what counts as
// a clean exit). As in systemd, exit 0 and death by SIGHUP, SIGINT, SIGTERM or SIGPIPE are always
// clean; a daemon without a SIGTERM handler, or one that re-raises it after shutting down (etcd
// 3.4), stops cleanly.
//
//   CleanStop stop;
//   stop.signal = *parse_signal("--stop-signal", "SIGINT");           // nats-server
//   if (auto ok = stop.add_success("--success-exit-status", "75 SIGUSR1"); !ok) ...;
//   bool fine = stop.clean(ExitStatus::exited(75));                    // true
#pragma once

#include <csignal>
#include <string>
#include <string_view>
#include <vector>

#include "crashkit/harness/exit_status.hpp"
#include "crashkit/harness/result.hpp"

namespace crashkit {

struct CleanStop {
  int signal = SIGTERM;
  std::vector<int> codes;    // exit codes counted as clean besides 0
  std::vector<int> signals;  // signals counted as clean besides HUP, INT, TERM, PIPE

  bool clean(const ExitStatus& s) const;
  // Adds a SuccessExitStatus= list: exit codes 0-255 and signal names, separated by spaces or
  // commas ("75 250 SIGUSR1"). A usage error names `option` and the bad word.
  Status add_success(std::string_view option, std::string_view list);
  // The extra codes and signals as a list add_success reads back ("75 SIGUSR1"); empty if none.
  std::string success_list() const;
  // "exit 0 or death by SIGHUP, SIGINT, SIGTERM or SIGPIPE" plus the extras: for messages.
  std::string describe_clean() const;
};

// "SIGINT", "INT", "sigint" or "2" -> 2. A usage error names `option` and lists the forms.
Result<int> parse_signal(std::string_view option, std::string_view text);

}  // namespace crashkit
