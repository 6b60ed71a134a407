// Discovery: one unarmed run with crossing counters on (CRASHKIT_COUNTERS), so a matrix can
// list `points: all` and `crossings: all`. Start, workload, SIGKILL, restart (recovery),
// clean stop; the counters of the first start and of the restart are read separately. In a
// group (spec.fault.at names the replica), the same in that replica while the others serve.
#include <signal.h>

#include "cell_run.hpp"

namespace crashkit::detail {

Result<Discovery> CellRun::run_discovery() {
  if (is_group(spec_)) return run_group_discovery();  // group_plan.cpp
  Discovery d;
  d.run_dir = run_.root;
  if (auto v = prepare()) return harness_error(v->reason);
  auto first = start(0, 0, Arm::counters);
  if (!first) return first.error();
  std::optional<Daemon> daemon(std::move(*first));
  if (auto why = await_ready(*daemon, nullptr)) return harness_error("discovery: " + *why);
  if (spec_.workload) {
    auto w = run_command(*spec_.workload, 0, "workload.0.log", &rx_);
    if (!w) return w.error();
    if (!w->status.success()) return harness_error("discovery: workload " + w->describe());
  }
  daemon->kill();
  d.run = read_crash_counters(counters_path(0, 0));
  auto again = start(1, 1, Arm::counters);
  if (!again) return again.error();
  daemon.emplace(std::move(*again));
  if (auto why = await_ready(*daemon, nullptr)) return harness_error("discovery restart: " + *why);
  stop_clean(*daemon, 1);
  d.recovery = read_crash_counters(counters_path(1, 1));
  return d;
}

}  // namespace crashkit::detail
