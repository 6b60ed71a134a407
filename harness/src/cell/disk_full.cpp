// --disk-full (docs/resource-limits.md): the grammar, and DiskFill, the mount and the filler.
#include "cell/disk_full.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "crashkit/crash_protocol.hpp"

namespace crashkit {

Result<DiskFull> parse_disk_full(std::string_view option, std::string_view text) {
  DiskFull d;
  d.text = std::string(text);
  if (text == "fs") {
    d.on = DiskFull::On::fs;
    return d;
  }
  auto size = text.starts_with("tmpfs:") ? parse_byte_size(text.substr(6)) : std::nullopt;
  if (!size || *size < (64u << 10) || *size > (std::uint64_t{1} << 40))
    return usage_error(
        fmt::format("{} '{}': give tmpfs:SIZE (64K to 1024G, e.g. tmpfs:16M) or fs (the data "
                    "dir's own file system; docs/resource-limits.md)",
                    option, printable_text(text, 80)));
  d.size = *size;
  return d;
}

namespace detail {

namespace fs = std::filesystem;

DiskFill::~DiskFill() {
  stop_timer();
  if (mounted_) (void)unmount();
}

Result<std::unique_ptr<DiskFill>> DiskFill::create(const DiskFull& spec, const RunDir& run,
                                                   bool as_root) {
  std::unique_ptr<DiskFill> d(new DiskFill(spec, run.data, run.root, as_root));
  d->ledger_ = run.ledger;
  if (spec.on == DiskFull::On::tmpfs) {
    const std::string options = fmt::format("size={},mode=0755", spec.size);
    if (::mount("crashkit-disk-full", d->data_.c_str(), "tmpfs", MS_NOSUID | MS_NODEV,
                options.c_str()) != 0)
      return usage_error(fmt::format(
          "--disk-full {}: cannot mount a tmpfs on {}: {}; this needs CAP_SYS_ADMIN (root), "
          "or give --disk-full fs to fill the data dir's own file system",
          spec.text, d->data_.string(), std::strerror(errno)));
    d->mounted_ = true;
  }
  d->filler_ = spec.on == DiskFull::On::tmpfs ? d->data_ / ".crashkit-disk-full"
                                              : d->run_root_ / "disk-full.filler";
  return d;
}

Status DiskFill::fill() {
  std::lock_guard lk(mu_);
  if (filled_) return Ok{};
  if (spec_.on == DiskFull::On::fs)
    if (auto ok = reserve_ledger(); !ok) return ok;
  struct statvfs st {};
  if (::statvfs(data_.c_str(), &st) != 0)
    return harness_error(
        fmt::format("--disk-full: statvfs {}: {}", data_.string(), std::strerror(errno)));
  // Root may use the blocks ext4 reserves for it: a root target sees them as free.
  const std::uint64_t blocks = as_root_ ? st.f_bfree : st.f_bavail;
  const std::uint64_t avail = blocks * st.f_frsize;
  const std::uint64_t take = avail > spec_.free ? avail - spec_.free : 0;
  int fd = ::open(filler_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0)
    return harness_error(fmt::format("--disk-full: cannot create the filler {}: {}",
                                     filler_.string(), std::strerror(errno)));
  int rc = take > 0 ? ::fallocate(fd, 0, 0, static_cast<off_t>(take)) : 0;
  const int e = errno;
  ::close(fd);
  filled_ = true;
  taken_ = take;
  if (rc != 0 && e != ENOSPC)  // ENOSPC: the target wrote meanwhile; what was left is taken
    return harness_error(fmt::format("--disk-full: fallocate {} bytes for {}: {}", take,
                                     filler_.string(), std::strerror(e)));
  return Ok{};
}

// On the data dir's own file system the ledger would run short too, and a workload that cannot
// record its acknowledgements makes every check pass. Blocks reserved beyond its end
// (FALLOC_FL_KEEP_SIZE: the size stays, appends use them) keep kLedgerRoom bytes of appends
// working on the full disk.
Status DiskFill::reserve_ledger() {
  int fd = ::open(ledger_.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0)
    return harness_error(fmt::format("--disk-full fs: cannot open the ledger {}: {}",
                                     ledger_.string(), std::strerror(errno)));
  struct stat st {};
  int rc = ::fstat(fd, &st) == 0
               ? ::fallocate(fd, FALLOC_FL_KEEP_SIZE, st.st_size, static_cast<off_t>(kLedgerRoom))
               : -1;
  const int e = errno;
  ::close(fd);
  if (rc != 0)
    return harness_error(
        fmt::format("--disk-full fs: cannot reserve {} bytes for the ledger {}: "
                    "{}; use --disk-full tmpfs:SIZE",
                    kLedgerRoom, ledger_.string(), std::strerror(e)));
  return Ok{};
}

void DiskFill::fill_after(Duration delay) {
  stop_timer();
  timer_ = std::jthread([this, delay](std::stop_token stop) {
    std::mutex m;
    std::unique_lock lk(m);
    // A timed action, not synchronisation: the fill lands `delay` into the workload, or never
    // if the cell stops the timer first.
    std::condition_variable_any().wait_for(lk, stop, delay, [] { return false; });
    if (stop.stop_requested()) return;
    if (auto ok = fill(); !ok) late_error_ = ok.error().message;
  });
}

void DiskFill::stop_timer() {
  if (timer_.joinable()) {
    timer_.request_stop();
    timer_.join();
  }
}

Status DiskFill::release() {
  stop_timer();
  if (!late_error_.empty()) return harness_error(late_error_);
  std::lock_guard lk(mu_);
  std::error_code ec;
  fs::remove(filler_, ec);
  if (ec)
    return harness_error(fmt::format("--disk-full: cannot remove the filler {}: {}",
                                     filler_.string(), ec.message()));
  filled_ = false;
  if (mounted_) {  // the target may have filled the tmpfs itself: recovery gets as much again
    const std::string options = fmt::format("size={}", spec_.size * 2);
    if (::mount(nullptr, data_.c_str(), nullptr, MS_REMOUNT | MS_NOSUID | MS_NODEV,
                options.c_str()) != 0)
      return harness_error(fmt::format("--disk-full: cannot grow the tmpfs on {}: {}",
                                       data_.string(), std::strerror(errno)));
  }
  return Ok{};
}

// The tmpfs's content survives it (a kept run dir is evidence): copied beside the mount,
// unmounted, moved back into the now-empty data dir.
Status DiskFill::unmount() {
  if (!mounted_) return Ok{};
  std::error_code ec;
  fs::remove(filler_, ec);
  const fs::path saved = run_root_ / "data.disk-full";
  fs::copy(data_, saved, fs::copy_options::recursive | fs::copy_options::copy_symlinks, ec);
  if (::umount2(data_.c_str(), MNT_DETACH) != 0)
    return harness_error(
        fmt::format("--disk-full: cannot unmount {}: {}", data_.string(), std::strerror(errno)));
  mounted_ = false;
  if (ec)
    return harness_error(
        fmt::format("--disk-full: the data dir's content could not be kept: "
                    "{}",
                    ec.message()));
  for (const auto& e : fs::directory_iterator(saved, ec))
    fs::rename(e.path(), data_ / e.path().filename(), ec);
  fs::remove_all(saved, ec);
  return Ok{};
}

std::string DiskFill::describe() const {
  std::lock_guard lk(mu_);
  const std::string where = spec_.on == DiskFull::On::tmpfs
                                ? fmt::format("a {}-byte tmpfs on the data dir", spec_.size)
                                : fmt::format("the data dir's own file system");
  const std::string when =
      spec_.fill_at ? fmt::format("{} into the first workload", format_duration(*spec_.fill_at))
                    : std::string("before the first start");
  return fmt::format("disk full: {}, filled {} leaving {} bytes free (filler {} bytes)", where,
                     when, spec_.free, taken_);
}

}  // namespace detail
}  // namespace crashkit
