#include "crashkit/harness/output_capture.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <thread>

namespace crashkit {

struct OutputCapture::State {
  int read_fd = -1;
  int write_fd = -1;
  int stop_fd = -1;  // eventfd: finish() asks the reader to drain and stop
  int file_fd = -1;
  std::size_t limit = 0;
  std::size_t written = 0;
  std::size_t dropped = 0;
  mutable std::mutex mu;
  std::string tail;
  std::thread reader;

  void keep_tail(const char* data, std::size_t n) {
    std::lock_guard lock(mu);
    tail.append(data, n);
    if (tail.size() > kTail) tail.erase(0, tail.size() - kTail);
  }

  void consume(const char* data, std::size_t n) {
    keep_tail(data, n);
    std::size_t room = written < limit ? limit - written : 0;
    std::size_t to_file = std::min(room, n);
    if (to_file > 0) {
      // A full or failing disk must not stop us draining the pipe (the child would block).
      ssize_t w = ::write(file_fd, data, to_file);
      if (w > 0) written += static_cast<std::size_t>(w);
    }
    dropped += n - to_file;
  }

  void run() {
    char buf[16384];
    pollfd fds[2] = {{read_fd, POLLIN, 0}, {stop_fd, POLLIN, 0}};
    bool stopping = false;
    while (true) {
      if (!stopping) {
        if (poll(fds, 2, -1) < 0 && errno != EINTR) break;
        if ((fds[1].revents & POLLIN) != 0) stopping = true;
      }
      ssize_t n = read(read_fd, buf, sizeof buf);
      if (n > 0) {
        consume(buf, static_cast<std::size_t>(n));
        continue;
      }
      if (n == 0) break;                       // every writer closed
      if (errno == EAGAIN && stopping) break;  // drained; a straggler may hold it open
      if (errno != EAGAIN && errno != EINTR) break;
    }
    if (dropped > 0) {
      std::string note = fmt::format("\n[crashkit: {} further bytes dropped]\n", dropped);
      if (::write(file_fd, note.data(), note.size()) < 0) {
      }
    }
  }
};

Result<OutputCapture> OutputCapture::open(const std::filesystem::path& file, std::size_t limit) {
  auto s = std::make_unique<State>();
  s->limit = limit;
  s->file_fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (s->file_fd < 0)
    return usage_error(fmt::format("artifact {}: cannot create: {}; check the run dir is writable",
                                   file.string(), std::strerror(errno)));
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) {
    close(s->file_fd);
    return harness_error(fmt::format("capture: pipe failed: {}", std::strerror(errno)));
  }
  s->read_fd = p[0];
  s->write_fd = p[1];
  fcntl(s->read_fd, F_SETFL, O_NONBLOCK);
  s->stop_fd = eventfd(0, EFD_CLOEXEC);
  if (s->stop_fd < 0) {
    close(p[0]);
    close(p[1]);
    close(s->file_fd);
    return harness_error(fmt::format("capture: eventfd failed: {}", std::strerror(errno)));
  }
  State* raw = s.get();
  s->reader = std::thread([raw] { raw->run(); });
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
  if (s_->reader.joinable()) {
    std::uint64_t one = 1;
    if (::write(s_->stop_fd, &one, sizeof one) < 0) {
    }
    s_->reader.join();
    close(s_->read_fd);
    close(s_->stop_fd);
    close(s_->file_fd);
  }
  return tail();
}

std::string OutputCapture::tail() const {
  if (!s_) return {};
  std::lock_guard lock(s_->mu);
  return s_->tail;
}

std::string last_line(const std::string& text, std::size_t max) {
  std::size_t end = text.find_last_not_of(" \t\r\n");
  if (end == std::string::npos) return {};
  std::size_t start = text.rfind('\n', end);
  start = start == std::string::npos ? 0 : start + 1;
  std::string line = text.substr(start, end - start + 1);
  if (line.size() > max) line = line.substr(0, max) + "...";
  return line;
}

}  // namespace crashkit
