#include "cell/ext4_image.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/loop.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "crashkit/harness/matrix.hpp"  // shell_quote
#include "process/shell_command.hpp"

namespace crashkit::detail {
namespace {

namespace fs = std::filesystem;

// Closes an fd on every path out.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

Status make_ext4(const fs::path& image, std::uint64_t size) {
  {
    Fd f{::open(image.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)};
    if (f.fd < 0 || ::ftruncate(f.fd, static_cast<off_t>(size)) != 0)
      return harness_error(fmt::format("--disk-full ext4: cannot create the image {}: {}",
                                       image.string(), std::strerror(errno)));
  }
  // nodiscard: nothing to discard in a fresh sparse file; lazy init off: no kernel thread
  // writing inode tables behind the daemon's back while it runs.
  auto r = run_shell({.command = fmt::format("mkfs.ext4 -q -F -E nodiscard,lazy_itable_init=0,"
                                             "lazy_journal_init=0 {}",
                                             shell_quote(image.string())),
                      .env = {"PATH=/usr/local/sbin:/usr/sbin:/sbin:/usr/local/bin:/usr/bin:/bin"},
                      .log = image.string() + ".log",
                      .timeout = std::chrono::minutes(2)});
  if (!r) return r.error();
  if (!r->status.success())
    return usage_error(
        fmt::format("--disk-full ext4: mkfs.ext4 {} {}; install e2fsprogs, or use "
                    "--disk-full tmpfs:SIZE",
                    image.string(), r->describe()));
  return Ok{};
}

// A free loop device configured on `image` with autoclear, or an error. Another process may
// take the free device between the query and the configure (EBUSY): then the next one.
Result<int> attach_loop(const fs::path& image) {
  Fd img{::open(image.c_str(), O_RDWR | O_CLOEXEC)};
  Fd ctl{::open("/dev/loop-control", O_RDWR | O_CLOEXEC)};
  if (img.fd < 0 || ctl.fd < 0)
    return usage_error(fmt::format(
        "--disk-full ext4: cannot open {}: {}; this needs root and loop devices, or use "
        "--disk-full tmpfs:SIZE",
        img.fd < 0 ? image.string() : "/dev/loop-control", std::strerror(errno)));
  for (int attempt = 0; attempt < 16; ++attempt) {
    const int n = ::ioctl(ctl.fd, LOOP_CTL_GET_FREE);
    if (n < 0) break;
    const std::string dev = fmt::format("/dev/loop{}", n);
    int lfd = ::open(dev.c_str(), O_RDWR | O_CLOEXEC);
    if (lfd < 0) break;
    loop_config cfg{};
    cfg.fd = static_cast<std::uint32_t>(img.fd);
    cfg.info.lo_flags = LO_FLAGS_AUTOCLEAR;
    if (::ioctl(lfd, LOOP_CONFIGURE, &cfg) == 0) return lfd;
    const int e = errno;
    ::close(lfd);
    if (e != EBUSY) {
      errno = e;
      break;
    }
  }
  return usage_error(fmt::format(
      "--disk-full ext4: cannot attach {} to a loop device: {}; this needs root and a kernel "
      "with LOOP_CONFIGURE (5.8), or use --disk-full tmpfs:SIZE",
      image.string(), std::strerror(errno)));
}

}  // namespace

Status mount_ext4_image(const fs::path& image, std::uint64_t size, const fs::path& target) {
  if (auto ok = make_ext4(image, size); !ok) return ok;
  auto loop = attach_loop(image);
  if (!loop) return loop.error();
  Fd lfd{*loop};
  char dev[64] = {};
  loop_info64 info{};
  if (::ioctl(lfd.fd, LOOP_GET_STATUS64, &info) != 0)
    return harness_error(
        fmt::format("--disk-full ext4: LOOP_GET_STATUS64: {}", std::strerror(errno)));
  std::snprintf(dev, sizeof dev, "/dev/loop%u", info.lo_number);
  if (::mount(dev, target.c_str(), "ext4", MS_NOSUID | MS_NODEV, nullptr) != 0) {
    const int e = errno;
    ::ioctl(lfd.fd, LOOP_CLR_FD, 0);
    return usage_error(
        fmt::format("--disk-full ext4: cannot mount {} on {}: {}; this needs "
                    "CAP_SYS_ADMIN (root), or use --disk-full fs",
                    dev, target.string(), std::strerror(e)));
  }
  std::error_code ec;
  fs::remove(target / "lost+found", ec);  // the daemon's data dir starts empty, as elsewhere
  return Ok{};
}

}  // namespace crashkit::detail
