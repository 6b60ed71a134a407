// --disk-full (docs/resource-limits.md): the grammar, and DiskFill, the mount and the filler.
#include "cell/disk_full.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <future>

#include "cell/ext4_image.hpp"
#include "crashkit/crash_protocol.hpp"

namespace crashkit {

Result<DiskFull> parse_disk_full(std::string_view option, std::string_view text) {
  DiskFull d;
  d.text = std::string(text);
  if (text == "fs") {
    d.on = DiskFull::On::fs;
    return d;
  }
  const bool ext4 = text.starts_with("ext4:");
  auto size =
      text.starts_with("tmpfs:") || ext4 ? parse_byte_size(text.substr(5 + !ext4)) : std::nullopt;
  const std::uint64_t least = ext4 ? 2u << 20 : 64u << 10;
  if (!size || *size < least || *size > (std::uint64_t{1} << 40))
    return usage_error(
        fmt::format("{} '{}': give tmpfs:SIZE (64K to 1024G, e.g. tmpfs:16M), ext4:SIZE (2M to "
                    "1024G, a loop-mounted image) or fs (the data dir's own file system; "
                    "docs/resource-limits.md)",
                    option, printable_text(text, 80)));
  d.on = ext4 ? DiskFull::On::ext4 : DiskFull::On::tmpfs;
  d.size = *size;
  return d;
}

Status parse_fill_at(std::string_view option, std::string_view text, DiskFull& d) {
  if (text.starts_with("op:")) {
    auto k = parse_number<std::uint64_t>(text.substr(3));
    if (!k || *k == 0 || *k > 1000000000)
      return usage_error(fmt::format(
          "{} '{}': op:K fills once the first workload has K acknowledged operations (K from 1 "
          "to 1000000000), e.g. op:5",
          option, printable_text(text, 40)));
    d.fill_at_op = *k;
    return Ok{};
  }
  auto at = parse_duration(std::string(option), text);
  if (!at)
    return usage_error(fmt::format("{}; or op:K, after the workload's Kth acknowledged operation",
                                   at.error().message));
  d.fill_at = *at;
  return Ok{};
}

std::string DiskFull::fill_at_text() const {
  if (fill_at_op > 0) return fmt::format("op:{}", fill_at_op);
  return fill_at ? format_duration(*fill_at) : std::string();
}

namespace detail {

namespace fs = std::filesystem;

DiskFill::~DiskFill() {
  stop_timer();
  if (mounted_) (void)unmount();
}

Result<std::unique_ptr<DiskFill>> DiskFill::create(const DiskFull& spec, const RunDir& run,
                                                   const std::optional<Credentials>& user) {
  const bool as_root = !user && geteuid() == 0;
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
  } else if (spec.on == DiskFull::On::ext4) {
    if (auto ok = mount_ext4_image(d->image(), spec.size, d->data_); !ok) return ok.error();
    d->mounted_ = true;
  }
  // A --user target owns its data dir, on the mount as before it.
  if (d->mounted_ && user && ::chown(d->data_.c_str(), user->uid, user->gid) != 0)
    return harness_error(fmt::format("--disk-full: chown {} for --user failed: {}",
                                     d->data_.string(), std::strerror(errno)));
  d->filler_ = d->mounted_ ? d->data_ / ".crashkit-disk-full" : d->run_root_ / "disk-full.filler";
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
  filled_ever_ = true;
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

namespace {
// The workload runs on while a fill thread waits to be scheduled: on a busy machine a fill at
// op:K landed 160 operations past K, and one at 1 ms landed after the workload's last put.
// Where allowed (root, CAP_SYS_NICE), a real-time priority makes the wake-up preempt it at
// once; the thread blocks between its checks, so it never holds a CPU. Otherwise it runs as
// before, and the note says where the fill landed.
void wake_promptly() {
  sched_param rt{};
  rt.sched_priority = 1;
  (void)::pthread_setschedparam(::pthread_self(), SCHED_FIFO, &rt);
}
}  // namespace

void DiskFill::fill_after(Duration delay) {
  stop_timer();
  const auto armed = std::chrono::steady_clock::now();
  timer_ = std::jthread([this, delay, armed](std::stop_token stop) {
    wake_promptly();
    std::mutex m;
    std::unique_lock lk(m);
    // A timed action, not synchronisation: the fill lands `delay` into the workload, or never
    // if the cell stops the timer first.
    std::condition_variable_any().wait_for(lk, stop, delay, [] { return false; });
    if (stop.stop_requested()) return;
    if (auto ok = fill(); !ok) late_error_ = ok.error().message;
    std::lock_guard g(mu_);
    landed_after_ = std::chrono::duration_cast<Duration>(std::chrono::steady_clock::now() - armed);
  });
}

void DiskFill::fill_after_acks(std::uint64_t acks) {
  stop_timer();
  std::promise<std::string> armed;
  auto ready = armed.get_future();
  timer_ = std::jthread([this, acks, &armed](std::stop_token stop) {
    wake_promptly();  // it blocks in poll() between the ledger's writes
    if (auto why = await_acks(acks, armed, stop); !why.empty()) late_error_ = why;
  });
  // The watch is in place before the workload starts (its first writes are not waited out).
  if (auto why = ready.get(); !why.empty()) {
    stop_timer();
    late_error_ = why;
  }
}

void DiskFill::workload_started(pid_t pgid) {
  workload_pgid_ = pgid;
  workload_pgid_.notify_all();
}

// Counts "acked" lines the workload appends to the ledger, woken by inotify at each write to
// the run dir (the workload may create the ledger), and fills at the `acks`-th. Empty, or what
// went wrong. A stop wakes it through an eventfd.
std::string DiskFill::await_acks(std::uint64_t acks, std::promise<std::string>& armed,
                                 std::stop_token stop) {
  const int in = ::inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  const int wake = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  std::string why;
  if (in < 0 || wake < 0 ||
      ::inotify_add_watch(in, run_root_.c_str(), IN_MODIFY | IN_CREATE | IN_MOVED_TO) < 0)
    why = fmt::format("--fill-at op:{}: cannot watch the ledger {}: {}", acks, ledger_.string(),
                      std::strerror(errno));
  armed.set_value(why);  // from here `armed` is gone: the caller has returned
  if (!why.empty()) return "";
  std::stop_callback on_stop(stop, [wake] {
    const std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake, &one, sizeof one);
  });
  std::uint64_t offset = 0;
  std::string partial;
  // The ledger, opened once it exists and read on from `offset` at each wake-up: the workload
  // appends to it (the ledger tools never replace it), so one descriptor sees every line.
  int ledger = -1;
  auto count = [&] {  // the "acked" lines appended since the last call
    if (ledger < 0) ledger = ::open(ledger_.c_str(), O_RDONLY | O_CLOEXEC);
    if (ledger < 0) return;
    char buf[16384];
    for (ssize_t n; (n = ::pread(ledger, buf, sizeof buf, static_cast<off_t>(offset))) > 0;) {
      offset += static_cast<std::uint64_t>(n);
      partial.append(buf, static_cast<std::size_t>(n));
    }
    for (auto nl = partial.find('\n'); nl != std::string::npos; nl = partial.find('\n')) {
      acks_seen_ += partial.starts_with("acked ");
      partial.erase(0, nl + 1);
    }
  };
  while (why.empty() && !stop.stop_requested()) {
    count();
    if (acks_seen_ >= acks) {
      // Frozen from here until the disk is full (ESRCH: the workload already ended). It may
      // have acknowledged a few more since the wake-up: counted again once it is stopped.
      // Acknowledgements mean the workload started: its group is known, or about to be.
      workload_pgid_.wait(0);
      const pid_t pgid = workload_pgid_;
      if (pgid > 0) ::kill(-pgid, SIGSTOP);
      count();
      if (auto ok = fill(); !ok) why = ok.error().message;
      if (pgid > 0) ::kill(-pgid, SIGCONT);
      std::lock_guard lk(mu_);
      acks_at_fill_ = acks_seen_;
      break;
    }
    pollfd p[2] = {{in, POLLIN, 0}, {wake, POLLIN, 0}};
    if (::poll(p, 2, -1) < 0 && errno != EINTR) why = std::strerror(errno);
    char events[4096];
    while (::read(in, events, sizeof events) > 0) {
    }
  }
  if (in >= 0) ::close(in);
  if (wake >= 0) ::close(wake);
  if (ledger >= 0) ::close(ledger);
  return why;
}

void DiskFill::stop_timer() {
  if (workload_pgid_ == 0) {  // a watcher waiting for a group that will not come: none
    workload_pgid_ = -1;
    workload_pgid_.notify_all();
  }
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
  // The target may have filled the tmpfs itself: recovery gets as much again. (An ext4 image
  // keeps its size: growing it online needs resize2fs; the filler's room is what recovery gets.)
  if (mounted_ && spec_.on == DiskFull::On::tmpfs) {
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
  if (spec_.on == DiskFull::On::ext4) {
    std::error_code gone;
    fs::remove(image(), gone);  // its loop device detached itself at the unmount (autoclear)
  }
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
  const std::string where =
      spec_.on == DiskFull::On::fs
          ? std::string("the data dir's own file system")
          : fmt::format("a {}-byte {} on the data dir", spec_.size,
                        spec_.on == DiskFull::On::tmpfs ? "tmpfs" : "loop-mounted ext4 image");
  if (spec_.fills_later() && !filled_ever_)
    return fmt::format("disk full: {}, never filled (--fill-at {})", where, spec_.fill_at_text());
  const std::string when =
      spec_.fill_at_op > 0
          ? fmt::format(
                "after the first workload's acknowledged operation {} (the workload "
                "stopped with {} acknowledged)",
                spec_.fill_at_op, acks_at_fill_)
      : spec_.fill_at ? fmt::format("{} into the first workload (it landed {} in)",
                                    format_duration(*spec_.fill_at),
                                    format_duration(landed_after_.value_or(*spec_.fill_at)))
                      : std::string("before the first start");
  return fmt::format("disk full: {}, filled {} leaving {} bytes free (filler {} bytes)", where,
                     when, spec_.free, taken_);
}

std::optional<std::string> DiskFill::never_filled() const {
  std::lock_guard lk(mu_);
  if (filled_ever_) return std::nullopt;
  if (spec_.fill_at_op > 0)
    return fmt::format(
        "--fill-at op:{}: the disk was never filled: the first workload acknowledged {} "
        "operation(s)",
        spec_.fill_at_op, acks_seen_.load());
  return fmt::format("--fill-at {}: the disk was never filled: the first workload ended first",
                     spec_.fill_at_text());
}

}  // namespace detail
}  // namespace crashkit
