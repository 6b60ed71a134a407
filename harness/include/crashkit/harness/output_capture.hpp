// OutputCapture: a pipe whose read end a background thread (one for every capture of the
// process) drains into a file, keeping at most `limit` bytes on disk (a chatty daemon cannot
// fill the artifact directory) and the last few KiB in memory for one-line error reports. A
// file that cannot be created or written (a full disk) is named in that tail, so the report
// says the artifact is incomplete.
//
//   auto cap = OutputCapture::open(run.artifacts / "target.0.stderr", 4 << 20);
//   spawn({.stderr_fd = cap->write_fd()}); cap->close_write_end();
//   ...; std::string t = cap->finish();  // tail of what was written
#pragma once

#include <cstddef>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "crashkit/harness/result.hpp"

namespace crashkit {

class OutputCapture {
 public:
  // now: the file exists from open() on (command logs). on_first_byte: created when the first
  // byte arrives, so a start that prints nothing costs no file (the daemon's stdout/stderr, once
  // per start: creating two files per cycle was the largest cost of a `crashkit run --cycles`
  // loop). A file that cannot be created then is named in the tail.
  enum class FileCreation { now, on_first_byte };
  static Result<OutputCapture> open(const std::filesystem::path& file, std::size_t limit,
                                    FileCreation when = FileCreation::now);
  OutputCapture(OutputCapture&&) noexcept;
  OutputCapture& operator=(OutputCapture&&) noexcept;
  ~OutputCapture();  // finish()

  // Pass to the child as stdout/stderr (O_CLOEXEC; Child dup2s it into place).
  int write_fd() const;
  // After spawning: drop the harness's copy so EOF arrives when the child's copies close.
  void close_write_end();
  // Stops reading (after draining what is buffered, even if a grandchild still holds the
  // pipe open), closes the file, and returns the last kTail bytes seen.
  std::string finish();
  // Tail so far (thread-safe).
  std::string tail() const;
  // Reads what the pipe holds now, on the caller's thread, and returns the tail: complete for a
  // process that has exited even while others still hold the pipe.
  std::string sync();

  // A pipe kept across the starts of one daemon (Daemon::KeptPipes): its owner never calls
  // close_write_end(), so the pipe does not reach EOF between starts and costs no new pipe, no
  // epoll change and no wake-up of the capture thread per start. settle() ends a start: it
  // drains what the pipe holds into the file and closes it (bytes arriving after it reach only
  // the tail). rotate() sends what follows to `next` (created on its first byte) with a fresh
  // limit and tail. The caller must know that no process of the ended start holds the pipe any
  // more (they were killed and reaped), or their late output would land in `next`.
  void settle();
  void rotate(std::string next);
  // The file it writes to (which may not exist yet: FileCreation::on_first_byte).
  std::filesystem::path file() const;

  static constexpr std::size_t kTail = 2048;

  struct State;  // internal (output_capture.cpp)

 private:
  explicit OutputCapture(std::unique_ptr<State> s);
  std::unique_ptr<State> s_;
};

// A capture whose file could not take what it was to keep (a full disk, an I/O error): from the
// first failure on, the output is only in the tail in memory.
struct CaptureLoss {
  std::filesystem::path file;
  const char* step = "writing";  // what failed: "creating", "writing" or "closing"
  int error = 0;                 // its errno
  std::size_t lost_bytes = 0;    // output that is not in the file because of it
  // "captured output lost: FILE: writing failed: No space left on device (ENOSPC); 12 byte(s)
  // not in the file"
  std::string describe() const;
};

// Every capture that loses output records it here when it finishes: its owners (Daemon,
// ShellProcess) do not pass it on, and a loss must never be silent. Removes and returns the
// losses of files under `dir`, oldest first (a cell takes those of its run dir).
std::vector<CaptureLoss> take_capture_losses(const std::filesystem::path& dir);

// The last non-empty line of `text`, shortened to `max` characters, for one-line reports.
std::string last_line(const std::string& text, std::size_t max = 200);
// What explains a daemon's failure in its stderr: the first line of `head` (the start of the
// output) or else of `tail` that reads as an error (error, fatal, invalid, cannot, failed,
// denied, panic, refuse, abort; any case), then " ... " and the last line of `tail` if that is
// another one; the last line alone if none reads as an error. Each line shortened to `max`
// characters. Daemons print the cause first and a usage dump or "Aborting" last (etcd, mariadbd).
std::string explaining_lines(const std::string& head, const std::string& tail,
                             std::size_t max = 200);

}  // namespace crashkit
