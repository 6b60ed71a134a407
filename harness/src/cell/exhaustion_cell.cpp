// A cell's --disk-full and --memory (docs/resource-limits.md): the DiskFill of its data dir and
// the memory cgroup of its target, through the flow.
#include <unistd.h>

#include "cell/cell_run.hpp"

namespace crashkit::detail {

std::optional<Verdict> CellRun::exhaustion_setup() {
  if (spec_.memory && !memory_) {
    auto m = MemoryCgroup::create(*spec_.memory, daemons_);
    if (!m) return Verdict{Outcome::harness_error, m.error().message};
    memory_.emplace(std::move(*m));
  }
  if (!spec_.disk_full || disk_) return std::nullopt;
  auto d = DiskFill::create(*spec_.disk_full, run_, user_);
  if (!d) return Verdict{Outcome::harness_error, d.error().message};
  disk_ = std::move(*d);
  return std::nullopt;
}

// From the start: after --prepare (initdb needs room), before the first start.
std::optional<Verdict> CellRun::disk_fill_now() {
  if (!disk_ || spec_.disk_full->fills_later()) return std::nullopt;
  if (auto ok = disk_->fill(); !ok) return Verdict{Outcome::harness_error, ok.error().message};
  return std::nullopt;
}

// --fill-at: a timer, or a ledger watcher (armed before the workload starts) that stops the
// workload's group while it fills.
void CellRun::disk_on(int cycle) {
  if (!disk_ || cycle != 0) return;
  if (spec_.disk_full->fill_at) disk_->fill_after(*spec_.disk_full->fill_at);
  if (spec_.disk_full->fill_at_op > 0) disk_->fill_after_acks(spec_.disk_full->fill_at_op);
}

void CellRun::disk_workload_started(int cycle, pid_t pgid) {
  if (disk_ && cycle == 0) disk_->workload_started(pgid);
}

std::optional<Verdict> CellRun::disk_release() {
  if (!disk_) return std::nullopt;
  if (auto ok = disk_->release(); !ok) return Verdict{Outcome::harness_error, ok.error().message};
  return std::nullopt;
}

void CellRun::end_exhaustion(CellResult& r) {
  if (memory_) {
    r.notes.push_back(memory_->describe());
    if (const auto kills = memory_->oom_kills(); kills > 0 && needs_attention(r.outcome))
      r.reason = fmt::format(
          "out of memory: the OOM killer killed {} process(es) under --memory "
          "{}; {}",
          kills, *spec_.memory, r.reason);
  }
  if (!disk_) return;
  if (auto why = disk_->never_filled();
      why && spec_.disk_full->fills_later() && r.outcome == Outcome::pass) {
    r.outcome = Outcome::fault_not_reached;  // as a crash point never crossed: nothing was tested
    r.reason = *why;
  }
  std::string line = disk_->describe();
  if (auto ok = disk_->unmount(); !ok) line += "; " + ok.error().message;
  disk_.reset();
  r.notes.push_back(line);
}

}  // namespace crashkit::detail
