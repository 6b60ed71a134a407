// Private to the cell flows: DiskFill, the mount and the filler behind --disk-full.
//
//   auto d = DiskFill::create(*spec.disk_full, run_dir, as_root);  // tmpfs mounted
//   d->fill();               // or d->fill_after(20ms) when the first workload starts
//   ... the fault ...
//   d->release();            // filler gone, tmpfs doubled: recovery has room
//   d->unmount();            // content kept in the run dir's data/
//
// Thread-safety: fill() may run on the thread fill_after() or fill_after_acks() starts;
// release() and the destructor stop that thread first. One cell's thread owns the rest.
#pragma once

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <thread>

#include "cell/run_dir.hpp"
#include "crashkit/harness/credentials.hpp"
#include "crashkit/harness/disk_full.hpp"

namespace crashkit::detail {

class DiskFill {
 public:
  // tmpfs, ext4: mounts it on `data` (usage error without the privilege), owned by `user`.
  // A target running as root may use ext4's reserved blocks, so the filler takes them too.
  // fs: reserves room for the ledger when it fills (reserve_ledger says why).
  static Result<std::unique_ptr<DiskFill>> create(const DiskFull& spec, const RunDir& run,
                                                  const std::optional<Credentials>& user);
  static constexpr std::uint64_t kLedgerRoom = 4 << 20;
  ~DiskFill();

  Status fill();                    // the filler, leaving spec.free bytes; once until release()
  void fill_after(Duration delay);  // fill() on a timer thread
  // fill() on a watcher thread once the ledger holds `acks` acknowledged operations, with the
  // workload's process group (workload_started) stopped meanwhile (SIGSTOP ... SIGCONT), so
  // that it does not run on past the Kth operation before the disk is full. Returns once the
  // watch is in place: call it before the workload starts.
  void fill_after_acks(std::uint64_t acks);
  void workload_started(pid_t pgid);
  Status release();              // the filler removed; a tmpfs grown to twice its size
  Status unmount();              // tmpfs, ext4: content moved back onto the underlying data dir
  std::string describe() const;  // for the cell's notes: which method ran, how much it took
  // Filled later (--fill-at) but never filled: why, for a fault_not_reached. After release().
  std::optional<std::string> never_filled() const;

 private:
  DiskFill(DiskFull spec, std::filesystem::path data, std::filesystem::path run_root, bool as_root)
      : spec_(std::move(spec)),
        data_(std::move(data)),
        run_root_(std::move(run_root)),
        as_root_(as_root) {}
  void stop_timer();
  Status reserve_ledger();
  std::string await_acks(std::uint64_t acks, std::promise<std::string>& armed,
                         std::stop_token stop);
  std::filesystem::path image() const { return run_root_ / "disk-full.ext4"; }

  DiskFull spec_;
  std::filesystem::path data_, run_root_, filler_, ledger_;
  bool as_root_;
  bool mounted_ = false;
  mutable std::mutex mu_;
  bool filled_ = false;                      // guarded by mu_
  bool filled_ever_ = false;                 // guarded by mu_
  std::atomic<std::uint64_t> acks_seen_{0};  // by the watcher thread
  std::uint64_t acks_at_fill_ = 0;           // guarded by mu_ once set
  std::atomic<pid_t> workload_pgid_{0};      // 0: not yet started; -1: none will be
  std::uint64_t taken_ = 0;                  // guarded by mu_
  std::optional<Duration> landed_after_;     // guarded by mu_: the timed fill, after it was armed
  std::string late_error_;                   // written by the timer thread, read after it is joined
  std::jthread timer_;
};

}  // namespace crashkit::detail
