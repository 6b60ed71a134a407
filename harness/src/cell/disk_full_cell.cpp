// A cell's --disk-full (docs/resource-limits.md): the DiskFill of its data dir through the flow.
#include <unistd.h>

#include "cell/cell_run.hpp"

namespace crashkit::detail {

std::optional<Verdict> CellRun::disk_setup() {
  if (!spec_.disk_full || disk_) return std::nullopt;
  const bool as_root = !user_ && geteuid() == 0;
  auto d = DiskFill::create(*spec_.disk_full, run_, as_root);
  if (!d) return Verdict{Outcome::harness_error, d.error().message};
  disk_ = std::move(*d);
  return std::nullopt;
}

// From the start: after --prepare (initdb needs room), before the first start.
std::optional<Verdict> CellRun::disk_fill_now() {
  if (!disk_ || spec_.disk_full->fill_at) return std::nullopt;
  if (auto ok = disk_->fill(); !ok) return Verdict{Outcome::harness_error, ok.error().message};
  return std::nullopt;
}

void CellRun::disk_on(int cycle) {
  if (disk_ && cycle == 0 && spec_.disk_full->fill_at) disk_->fill_after(*spec_.disk_full->fill_at);
}

std::optional<Verdict> CellRun::disk_release() {
  if (!disk_) return std::nullopt;
  if (auto ok = disk_->release(); !ok) return Verdict{Outcome::harness_error, ok.error().message};
  return std::nullopt;
}

std::optional<std::string> CellRun::end_disk_full() {
  if (!disk_) return std::nullopt;
  std::string line = disk_->describe();
  if (auto ok = disk_->unmount(); !ok) line += "; " + ok.error().message;
  disk_.reset();
  return line;
}

}  // namespace crashkit::detail
