// Private to the cell flows: DiskFill, the mount and the filler behind --disk-full.
//
//   auto d = DiskFill::create(*spec.disk_full, run_dir, as_root);  // tmpfs mounted
//   d->fill();               // or d->fill_after(20ms) when the first workload starts
//   ... the fault ...
//   d->release();            // filler gone, tmpfs doubled: recovery has room
//   d->unmount();            // content kept in the run dir's data/
//
// Thread-safety: fill() may run on the timer thread fill_after() starts; release() and the
// destructor stop that thread first. One cell's thread owns the rest.
#pragma once

#include <condition_variable>
#include <filesystem>
#include <memory>
#include <mutex>
#include <stop_token>
#include <thread>

#include "cell/run_dir.hpp"
#include "crashkit/harness/disk_full.hpp"

namespace crashkit::detail {

class DiskFill {
 public:
  // tmpfs: mounts it on `data` (usage error without the privilege). `as_root`: the target runs
  // as root (it may use ext4's reserved blocks, so the filler takes them too).
  // fs: reserves room for the ledger when it fills (reserve_ledger says why).
  static Result<std::unique_ptr<DiskFill>> create(const DiskFull& spec, const RunDir& run,
                                                  bool as_root);
  static constexpr std::uint64_t kLedgerRoom = 4 << 20;
  ~DiskFill();

  Status fill();                    // the filler, leaving spec.free bytes; once until release()
  void fill_after(Duration delay);  // fill() on a timer thread
  Status release();                 // the filler removed; a tmpfs grown to twice its size
  Status unmount();                 // tmpfs: content moved back onto the underlying data dir
  std::string describe() const;     // for the cell's notes: which method ran, how much it took

 private:
  DiskFill(DiskFull spec, std::filesystem::path data, std::filesystem::path run_root, bool as_root)
      : spec_(std::move(spec)),
        data_(std::move(data)),
        run_root_(std::move(run_root)),
        as_root_(as_root) {}
  void stop_timer();
  Status reserve_ledger();

  DiskFull spec_;
  std::filesystem::path data_, run_root_, filler_, ledger_;
  bool as_root_;
  bool mounted_ = false;
  mutable std::mutex mu_;
  bool filled_ = false;      // guarded by mu_
  std::uint64_t taken_ = 0;  // guarded by mu_
  std::string late_error_;   // written by the timer thread, read after it is joined
  std::jthread timer_;
};

}  // namespace crashkit::detail
