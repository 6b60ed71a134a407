#include "crashkit/harness/output_capture.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <iterator>
#include <mutex>
#include <thread>
#include <vector>

namespace crashkit {

struct OutputCapture::State {
  int read_fd = -1;
  int write_fd = -1;
  int file_fd = -1;
  std::string path;      // created on the first byte when file_fd is -1 (FileCreation)
  bool settled = false;  // a kept pipe's start ended (settle()) and the next has not begun
  bool create_failed = false;
  bool write_failed = false;
  CaptureLoss loss;  // loss.error != 0: something was not kept (recorded by finish())
  std::size_t limit = 0;
  std::size_t written = 0;
  std::size_t dropped = 0;
  // Held while reading the pipe and writing the file: by the pump thread, and by the owner's
  // thread for settle(), rotate() and sync() (a kept pipe is read on both). Taken before mu.
  std::mutex io;
  mutable std::mutex mu;
  std::string tail;
  bool done = false;    // the pump let go of it after a finish() request (guarded by mu)
  bool at_eof = false;  // the pump saw EOF and will not touch it again (guarded by mu)
  std::condition_variable finished;

  void keep_tail(const char* data, std::size_t n) {
    std::lock_guard lock(mu);
    tail.append(data, n);
    if (tail.size() > kTail) tail.erase(0, tail.size() - kTail);
  }

  // A line in the tail (which reports quote) when the artifact itself cannot hold it, and the
  // first failure kept for the report.
  void note(const char* what, const char* step) {
    const int e = errno;
    std::string line = fmt::format("\n[crashkit: {} {}: {}; only this tail is kept]\n", what, path,
                                   std::strerror(e));
    keep_tail(line.data(), line.size());
    if (loss.error == 0) {
      loss.step = step;
      loss.error = e;
    }
  }

  // Writes all of it (a short write is retried); false on an error, errno set.
  bool write_all(const char* data, std::size_t n) {
    while (n > 0) {
      ssize_t w = ::write(file_fd, data, n);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) return false;
      written += static_cast<std::size_t>(w);
      loss.lost_bytes -= static_cast<std::size_t>(w);
      data += w;
      n -= static_cast<std::size_t>(w);
    }
    return true;
  }

  void consume(const char* data, std::size_t n) {
    if (settled) {  // a kept pipe between starts: no file is this output's (see settle())
      dropped += n;
      keep_tail(data, n);
      return;
    }
    if (file_fd < 0 && !create_failed) {
      file_fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      create_failed = file_fd < 0;
      if (create_failed) note("cannot create", "creating");
    }
    std::size_t room = written + loss.lost_bytes < limit ? limit - written - loss.lost_bytes : 0;
    std::size_t to_file = std::min(room, n);
    // Counted as lost until written: after a failure nothing more is tried, so the file is a
    // clean prefix of the output. A full or failing disk must not stop us draining the pipe
    // (the child would block).
    loss.lost_bytes += to_file;
    if (to_file > 0 && file_fd >= 0 && !write_failed) {
      write_failed = !write_all(data, to_file);
      if (write_failed) note("writing", "writing");
    }
    dropped += n - to_file;
    // After any note: the tail's last line stays the process's own (reports quote it).
    keep_tail(data, n);
  }

  // Reads what the pipe holds now. False at EOF (every writer closed) or on an error.
  bool drain() {
    std::lock_guard lock(io);
    return drain_locked();
  }
  bool drain_locked() {
    char buf[16384];
    while (true) {
      ssize_t n = ::read(read_fd, buf, sizeof buf);
      if (n > 0) {
        consume(buf, static_cast<std::size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      return n < 0 && errno == EAGAIN;
    }
  }

  void close_file() {
    if (dropped > 0 && file_fd >= 0 && !write_failed) {
      std::string line = fmt::format("\n[crashkit: {} further bytes dropped]\n", dropped);
      if (::write(file_fd, line.data(), line.size()) < 0) note("writing", "writing");
    }
    // close() reports what a file system defers (NFS, quota): the file may not hold it all.
    if (file_fd >= 0 && ::close(file_fd) != 0 && errno != EINTR) note("closing", "closing");
    file_fd = -1;
  }

  // Once the file is closed: its loss, if any, goes where the cell that owns the file finds it.
  void record_loss();
};

namespace {

// The losses recorded by finished captures, until a cell takes them. Never destroyed: a capture
// may finish while static destructors run.
struct LossRecord {
  std::mutex mu;
  std::vector<CaptureLoss> losses;
};
LossRecord& loss_record() {
  static auto* record = new LossRecord();
  return *record;
}

}  // namespace

void OutputCapture::State::record_loss() {
  if (loss.error == 0) return;
  loss.file = path;
  auto& r = loss_record();
  std::lock_guard lock(r.mu);
  r.losses.push_back(loss);
  loss = CaptureLoss{};  // recorded once, even if a kept pipe is settled twice
}

namespace {

bool is_under(const std::filesystem::path& file, const std::filesystem::path& dir) {
  return std::mismatch(dir.begin(), dir.end(), file.begin(), file.end()).first == dir.end();
}

}  // namespace

std::string CaptureLoss::describe() const {
  const char* name = strerrorname_np(error);
  std::string out = fmt::format("captured output lost: {}: {} failed: {} ({})", file.string(), step,
                                std::strerror(error), name != nullptr ? name : "?");
  if (lost_bytes > 0) out += fmt::format("; {} byte(s) not in the file", lost_bytes);
  return out;
}

std::vector<CaptureLoss> take_capture_losses(const std::filesystem::path& dir) {
  auto& r = loss_record();
  std::lock_guard lock(r.mu);
  std::vector<CaptureLoss> taken;
  auto mine = [&](const CaptureLoss& l) { return is_under(l.file, dir); };
  std::copy_if(r.losses.begin(), r.losses.end(), std::back_inserter(taken), mine);
  r.losses.erase(std::remove_if(r.losses.begin(), r.losses.end(), mine), r.losses.end());
  return taken;
}

namespace {

// One thread drains every capture of the process (epoll), instead of a thread per capture: a
// `crashkit run --cycles` loop starts two captures per cycle, and creating and ending two
// threads each time was a measurable part of its cost. Created on first use, never destroyed
// (it may be needed until the last static destructor runs). It holds a capture's io lock while
// it reads that capture, and no other lock.
class CapturePump {
 public:
  static CapturePump& instance() {
    static CapturePump* pump = new CapturePump();
    return *pump;
  }

  bool add(OutputCapture::State* s) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = s;
    return epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, s->read_fd, &ev) == 0;
  }

  // Drains what is buffered (even if a grandchild still holds the pipe open), then lets go.
  void finish(OutputCapture::State* s) {
    {
      // Usually the case once the process has exited and been reaped: every byte is in, and
      // no round trip to the pump thread is needed.
      std::lock_guard lock(s->mu);
      if (s->at_eof) return;
    }
    {
      std::lock_guard lock(mu_);
      finishing_.push_back(s);
    }
    std::uint64_t one = 1;
    if (::write(wake_fd_, &one, sizeof one) < 0) {
    }
    std::unique_lock lock(s->mu);
    s->finished.wait(lock, [s] { return s->done; });
  }

 private:
  CapturePump() {
    epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
    wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = nullptr;
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev);
    std::thread([this] { run(); }).detach();
  }

  void let_go(OutputCapture::State* s) {
    epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, s->read_fd, nullptr);
    std::lock_guard lock(s->mu);
    s->done = true;
    s->finished.notify_all();
  }

  [[noreturn]] void run() {
    epoll_event events[64];
    while (true) {
      int n = epoll_wait(epoll_fd_, events, 64, -1);
      for (int i = 0; i < n; ++i) {
        auto* s = static_cast<OutputCapture::State*>(events[i].data.ptr);
        if (s == nullptr) continue;  // the wake-up: handled below
        // At EOF (every writer closed) it leaves the interest list, so it cannot spin, and is
        // marked so that finish() needs no round trip.
        if (s->drain()) continue;
        epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, s->read_fd, nullptr);
        std::lock_guard lock(s->mu);  // after this, s is the finisher's alone (unless queued)
        s->at_eof = true;
      }
      std::uint64_t count = 0;
      if (::read(wake_fd_, &count, sizeof count) < 0) {
      }
      std::vector<OutputCapture::State*> batch;
      {
        std::lock_guard lock(mu_);
        batch.swap(finishing_);
      }
      for (auto* s : batch) {
        s->drain();
        let_go(s);
      }
    }
  }

  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  std::mutex mu_;
  std::vector<OutputCapture::State*> finishing_;
};

}  // namespace

Result<OutputCapture> OutputCapture::open(const std::filesystem::path& file, std::size_t limit,
                                          FileCreation when) {
  auto s = std::make_unique<State>();
  s->limit = limit;
  s->path = file.string();
  auto cannot = [&] {
    return usage_error(fmt::format("artifact {}: cannot create: {}; check the run dir is writable",
                                   file.string(), std::strerror(errno)));
  };
  if (when == FileCreation::now) {
    s->file_fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (s->file_fd < 0) return cannot();
  } else if (::access(file.parent_path().c_str(), W_OK | X_OK) != 0) {
    return cannot();  // a directory it could never be created in: say so now
  }
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) {
    if (s->file_fd >= 0) close(s->file_fd);
    return harness_error(fmt::format("capture: pipe failed: {}", std::strerror(errno)));
  }
  s->read_fd = p[0];
  s->write_fd = p[1];
  fcntl(s->read_fd, F_SETFL, O_NONBLOCK);
  if (!CapturePump::instance().add(s.get())) {
    int e = errno;
    close(p[0]);
    close(p[1]);
    if (s->file_fd >= 0) close(s->file_fd);
    return harness_error(fmt::format("capture: epoll_ctl failed: {}", std::strerror(e)));
  }
  return OutputCapture(std::move(s));
}

OutputCapture::OutputCapture(std::unique_ptr<State> s) : s_(std::move(s)) {}
OutputCapture::OutputCapture(OutputCapture&&) noexcept = default;
OutputCapture& OutputCapture::operator=(OutputCapture&& o) noexcept {
  if (this != &o) {
    finish();
    s_ = std::move(o.s_);
  }
  return *this;
}
OutputCapture::~OutputCapture() {
  finish();
}

int OutputCapture::write_fd() const {
  return s_ ? s_->write_fd : -1;
}

void OutputCapture::close_write_end() {
  if (s_ && s_->write_fd >= 0) {
    close(s_->write_fd);
    s_->write_fd = -1;
  }
}

std::string OutputCapture::finish() {
  if (!s_) return {};
  close_write_end();
  if (s_->read_fd >= 0) {
    CapturePump::instance().finish(s_.get());
    close(s_->read_fd);
    s_->read_fd = -1;
    s_->close_file();
    s_->record_loss();
  }
  return tail();
}

void OutputCapture::settle() {
  if (!s_ || s_->read_fd < 0) return;
  std::lock_guard io(s_->io);
  s_->drain_locked();
  s_->close_file();
  s_->record_loss();
  s_->settled = true;  // file() still names it: the start's output is there
}

void OutputCapture::rotate(std::string next) {
  if (!s_) return;
  std::lock_guard io(s_->io);
  if (!s_->settled) {  // settle() was skipped: end the previous file as it would have
    s_->drain_locked();
    s_->close_file();
    s_->record_loss();
  }
  s_->path = std::move(next);
  s_->settled = false;
  s_->written = s_->dropped = 0;
  s_->loss = CaptureLoss{};
  s_->create_failed = s_->write_failed = false;
  std::lock_guard lock(s_->mu);
  s_->tail.clear();
}

std::string OutputCapture::sync() {
  if (!s_) return {};
  if (s_->read_fd >= 0) {
    std::lock_guard io(s_->io);
    s_->drain_locked();
  }
  return tail();
}

std::filesystem::path OutputCapture::file() const {
  return s_->path;
}

std::string OutputCapture::tail() const {
  if (!s_) return {};
  std::lock_guard lock(s_->mu);
  return s_->tail;
}

}  // namespace crashkit
