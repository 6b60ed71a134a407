// OutputCapture: the bound on the file, the tail, losses on a full disk, and a pipe kept across
// the starts of one daemon (settle, rotate, sync).
#include "crashkit/harness/output_capture.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "../support/shell_spawn.hpp"
#include "crashkit/harness/child.hpp"
#include "crashkit/harness/placeholders.hpp"

namespace crashkit {
namespace {

namespace fs = std::filesystem;

using test::sh;

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Runs `script` to its end with stdout on the kept pipe (whose write end stays open).
void run_on(OutputCapture& cap, const std::string& script) {
  auto o = sh(script);
  o.stdout_fd = cap.write_fd();
  auto c = Child::spawn(o);
  ASSERT_TRUE(c) << c.error().message;
  c->wait();
}

struct TempDir {
  fs::path path = fs::temp_directory_path() / ("ck-cap-" + std::to_string(getpid()));
  TempDir() { fs::create_directories(path); }
  ~TempDir() { fs::remove_all(path); }
};

TEST(OutputCapture, BoundsTheFileAndKeepsTheTail) {
  auto file = fs::temp_directory_path() / ("ck-cap-" + std::to_string(getpid()));
  auto cap = OutputCapture::open(file, 1000);
  ASSERT_TRUE(cap);
  auto o = sh("i=0; while [ $i -lt 2000 ]; do echo line-$i; i=$((i+1)); done");
  o.stdout_fd = cap->write_fd();
  auto c = Child::spawn(o);
  cap->close_write_end();
  ASSERT_TRUE(c);
  c->wait();
  std::string tail = cap->finish();
  EXPECT_EQ(last_line(tail), "line-1999");
  auto size = fs::file_size(file);
  EXPECT_GE(size, 1000u);
  EXPECT_LT(size, 1100u);  // limit + the "bytes dropped" note
  fs::remove(file);
}

// A full disk loses the output that was to be kept: that is recorded, with the file and the
// errno, for the cell to report. /dev/full fails every write with ENOSPC.
TEST(OutputCapture, AFullDiskIsRecordedNeverSilent) {
  auto dir = fs::temp_directory_path() / ("ck-cap-full-" + std::to_string(getpid()));
  fs::create_directories(dir);
  auto file = dir / "out.log";
  fs::create_symlink("/dev/full", file);
  auto cap = OutputCapture::open(file, 1 << 20);
  ASSERT_TRUE(cap) << cap.error().message;
  auto o = sh("echo one; echo two");
  o.stdout_fd = cap->write_fd();
  auto c = Child::spawn(o);
  cap->close_write_end();
  ASSERT_TRUE(c);
  c->wait();
  EXPECT_EQ(last_line(cap->finish()), "two");  // the tail in memory still has it
  auto losses = take_capture_losses(dir);
  ASSERT_EQ(losses.size(), 1u);
  EXPECT_EQ(losses[0].file, file);
  EXPECT_EQ(losses[0].error, ENOSPC);
  EXPECT_EQ(losses[0].lost_bytes, 8u);
  EXPECT_NE(losses[0].describe().find(file.string()), std::string::npos) << losses[0].describe();
  EXPECT_NE(losses[0].describe().find("No space left on device (ENOSPC)"), std::string::npos)
      << losses[0].describe();
  EXPECT_TRUE(take_capture_losses(dir).empty());  // taken once
  fs::remove_all(dir);
}

TEST(OutputCapture, UnwritableArtifactIsAUsageError) {
  auto cap = OutputCapture::open("/nonexistent-dir/out.log", 10);
  ASSERT_FALSE(cap);
  EXPECT_EQ(cap.error().kind, ErrorKind::usage);
}

// One pipe, three starts: each start's output is in its own file and tail, a silent start makes
// no file, and the write end the harness keeps never lets the pipe reach EOF in between.
TEST(OutputCapture, AKeptPipeGivesEachStartItsOwnFile) {
  TempDir dir;
  auto cap =
      OutputCapture::open(dir.path / "t.0", 1 << 20, OutputCapture::FileCreation::on_first_byte);
  ASSERT_TRUE(cap) << cap.error().message;
  run_on(*cap, "echo first; echo again");
  cap->settle();
  EXPECT_EQ(slurp(dir.path / "t.0"), "first\nagain\n");  // whole once settled: no wait
  EXPECT_EQ(cap->file(), dir.path / "t.0");              // still named for the report quoting it
  cap->rotate(dir.path / "t.1");
  EXPECT_EQ(cap->tail(), "");  // the next start's tail starts empty
  run_on(*cap, "true");
  cap->settle();
  EXPECT_FALSE(fs::exists(dir.path / "t.1"));  // nothing written, no file
  cap->rotate(dir.path / "t.2");
  run_on(*cap, "echo third");
  EXPECT_EQ(last_line(cap->sync()), "third");  // read on this thread, writer gone, pipe open
  cap->settle();
  EXPECT_EQ(slurp(dir.path / "t.2"), "third\n");
  EXPECT_EQ(slurp(dir.path / "t.0"), "first\nagain\n");  // untouched by later starts
  cap->finish();
}

// Each start has the whole limit: a chatty start does not make the next one's output dropped.
// And bytes that arrive between settle() and rotate() (a writer that should have been dead)
// reach the tail only, never a settled file.
TEST(OutputCapture, AKeptPipeResetsTheLimitAndKeepsSettledFilesClosed) {
  TempDir dir;
  auto cap =
      OutputCapture::open(dir.path / "t.0", 1000, OutputCapture::FileCreation::on_first_byte);
  ASSERT_TRUE(cap);
  run_on(*cap, "i=0; while [ $i -lt 500 ]; do echo line-$i; i=$((i+1)); done");
  cap->settle();
  EXPECT_LT(fs::file_size(dir.path / "t.0"), 1100u);  // bounded: limit + the dropped note
  const auto settled = slurp(dir.path / "t.0");
  run_on(*cap, "echo stray");
  cap->settle();
  EXPECT_EQ(slurp(dir.path / "t.0"), settled);
  EXPECT_EQ(last_line(cap->tail()), "stray");
  cap->rotate(dir.path / "t.1");
  run_on(*cap, "echo short");
  cap->settle();
  EXPECT_EQ(slurp(dir.path / "t.1"), "short\n");
  cap->finish();
}

// A start whose file is on a full disk records its loss when it settles; the next start, on a
// good file, records none.
TEST(OutputCapture, AKeptPipeRecordsALossPerStart) {
  TempDir dir;
  fs::create_symlink("/dev/full", dir.path / "t.0");
  auto cap =
      OutputCapture::open(dir.path / "t.0", 1 << 20, OutputCapture::FileCreation::on_first_byte);
  ASSERT_TRUE(cap);
  run_on(*cap, "echo lost");
  cap->settle();
  auto losses = take_capture_losses(dir.path);
  ASSERT_EQ(losses.size(), 1u);
  EXPECT_EQ(losses[0].file, dir.path / "t.0");
  EXPECT_EQ(losses[0].error, ENOSPC);
  cap->rotate(dir.path / "t.1");
  run_on(*cap, "echo kept");
  cap->settle();
  EXPECT_TRUE(take_capture_losses(dir.path).empty());
  EXPECT_EQ(slurp(dir.path / "t.1"), "kept\n");
  cap->finish();
}

}  // namespace
}  // namespace crashkit
