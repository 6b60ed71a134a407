// Resource limits (--rlimit, rlimits:, Limit*=): the grammar, the limits a spawned target
// really has, a limit the kernel refuses, the unit file's and the matrix's spelling.
#include "crashkit/harness/resource_limit.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "crashkit/harness/child.hpp"
#include "crashkit/harness/disk_full.hpp"
#include "crashkit/harness/matrix.hpp"
#include "crashkit/harness/output_capture.hpp"
#include "crashkit/harness/placeholders.hpp"
#include "crashkit/harness/unit_file.hpp"

namespace crashkit {
namespace {

namespace fs = std::filesystem;

TEST(ResourceLimit, ParsesSystemdsNamesAndValues) {
  auto n = parse_resource_limit("--rlimit", "NOFILE=64");
  ASSERT_TRUE(n) << n.error().message;
  EXPECT_EQ(n->resource, RLIMIT_NOFILE);
  EXPECT_EQ(n->soft, 64u);
  EXPECT_EQ(n->hard, 64u);
  EXPECT_EQ(n->text, "NOFILE=64");
  auto as = parse_resource_limit("--rlimit", "AS=512M");
  ASSERT_TRUE(as);
  EXPECT_EQ(as->soft, 512ull << 20);
  auto pair = parse_resource_limit("--rlimit", "NOFILE=64:1024");
  ASSERT_TRUE(pair);
  EXPECT_EQ(pair->soft, 64u);
  EXPECT_EQ(pair->hard, 1024u);
  auto core = parse_resource_limit("--rlimit", "CORE=infinity");
  ASSERT_TRUE(core);
  EXPECT_EQ(core->hard, RLIM_INFINITY);
  EXPECT_EQ(resource_limit_name("LimitNPROC"), "NPROC");
  EXPECT_EQ(resource_limit_name("LimitBOGUS"), "");
  EXPECT_EQ(resource_limit_name("NOFILE"), "");
}

TEST(ResourceLimit, BadLimitsAreOneLineUsageErrors) {
  struct Case {
    const char* text;
    const char* says;
  };
  for (const auto& c : {Case{"NOFILE", "give NAME=VALUE"}, Case{"FILES=3", "unknown limit 'FILES'"},
                        Case{"NOFILE=many", "not a count"}, Case{"NOFILE=64K", "not a count"},
                        Case{"AS=12Q", "not a size"}, Case{"AS=99999999999999T", "not a size"},
                        Case{"NOFILE=99999999999999999999", "not a count"},
                        Case{"NOFILE=128:64", "soft limit is above"}, Case{"NOFILE=2", "below 3"},
                        Case{"NOFILE=", "not a count"}, Case{"NOFILE=64:", "not a count"}}) {
    auto r = parse_resource_limit("--rlimit", c.text);
    ASSERT_FALSE(r) << c.text;
    EXPECT_EQ(r.error().kind, ErrorKind::usage);
    EXPECT_NE(r.error().message.find(c.says), std::string::npos) << r.error().message;
    EXPECT_EQ(r.error().message.find('\n'), std::string::npos);
  }
}

// What the target sees: its own limits, read by the shell it runs.
TEST(ResourceLimit, TheTargetRunsUnderItsLimits) {
  auto cap = OutputCapture::open(fs::temp_directory_path() / "ck-rlimit.log", 1 << 20);
  ASSERT_TRUE(cap);
  SpawnOptions o;
  o.argv = {"/bin/sh", "-c", "ulimit -n; ulimit -Hn; ulimit -c"};
  o.env = child_environment({});
  o.limits = {*parse_resource_limit("t", "NOFILE=37:41"), *parse_resource_limit("t", "CORE=0")};
  o.stdout_fd = cap->write_fd();
  auto c = Child::spawn(o);
  cap->close_write_end();
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_TRUE(c->wait().success());
  EXPECT_EQ(cap->finish(), "37\n41\n0\n");
  std::error_code ec;
  fs::remove(cap->file(), ec);
}

// The kernel caps NOFILE at fs.nr_open (2^20 by default), even for root: the start fails, named.
TEST(ResourceLimit, ALimitTheKernelRefusesFailsTheStartByName) {
  SpawnOptions o;
  o.argv = {"/bin/true"};
  o.env = child_environment({});
  o.limits = {*parse_resource_limit("t", "NOFILE=4000000000")};
  auto c = Child::spawn(o);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().kind, ErrorKind::usage);
  EXPECT_NE(c.error().message.find("setrlimit"), std::string::npos) << c.error().message;
}

// Above crashkit's own hard limit: refused before anything starts, unless crashkit may raise it.
TEST(ResourceLimit, AHardLimitAboveCrashkitsOwnNeedsTheCapability) {
  rlimit own{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &own), 0);
  auto within = parse_resource_limit("t", fmt::format("NOFILE=16:{}", own.rlim_max));
  ASSERT_TRUE(within);
  EXPECT_FALSE(hard_limit_ceiling(*within));
  auto above = parse_resource_limit("t", fmt::format("NOFILE=16:{}", own.rlim_max + 1));
  ASSERT_TRUE(above);
  auto ceiling = hard_limit_ceiling(*above);
  if (ceiling) {
    EXPECT_EQ(*ceiling, own.rlim_max);
  }
  CellSpec s;
  s.target = {"/bin/true"};
  s.rlimits = {*above};
  auto r = run_cell(s);
  if (ceiling) {
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().kind, ErrorKind::usage);
    EXPECT_NE(r.error().message.find("CAP_SYS_RESOURCE"), std::string::npos);
  } else {  // with the capability (root outside a container) the start takes it
    ASSERT_TRUE(r) << r.error().message;
  }
}

TEST(ResourceLimit, UnitLimitsApplyAndAGivenLimitWins) {
  const fs::path f =
      fs::temp_directory_path() / ("ck-limits-" + std::to_string(getpid()) + ".service");
  std::ofstream(f) << "[Service]\nLimitNOFILE=4096\nLimitCORE=0\nLimitNOFILE=2048\n";
  auto u = read_unit_file(f);
  fs::remove(f);
  ASSERT_TRUE(u) << u.error().message;
  ASSERT_EQ(u->limits.size(), 2u);  // the second LimitNOFILE= replaced the first
  CellSpec s;
  s.rlimits = {*parse_resource_limit("--rlimit", "NOFILE=64")};
  ASSERT_TRUE(apply_unit(*u, {}, s));
  ASSERT_EQ(s.rlimits.size(), 2u);
  EXPECT_EQ(s.rlimits[0].text, "NOFILE=64");
  EXPECT_EQ(s.rlimits[1].resource, RLIMIT_CORE);

  std::ofstream(f) << "[Service]\nLimitNOFILE=lots\n";
  auto bad = read_unit_file(f);
  fs::remove(f);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find(":2: LimitNOFILE="), std::string::npos) << bad.error().message;
}

TEST(ResourceLimit, MatrixTakesAMappingOrAListAndNamesTheLine) {
  auto m = parse_matrix_spec("target: [kvd]\nrlimits: {NOFILE: 64, AS: 1G}\nfaults: [sigkill]\n",
                             "m.yaml");
  ASSERT_TRUE(m) << m.error().message;
  ASSERT_EQ(m->base.rlimits.size(), 2u);
  EXPECT_EQ(m->base.rlimits[1].soft, 1ull << 30);
  EXPECT_NE(repro_command(m->base).find("--rlimit NOFILE=64 --rlimit AS=1G"), std::string::npos)
      << repro_command(m->base);
  auto l = parse_matrix_spec("target: [kvd]\nrlimits: [NOFILE=64]\nfaults: [sigkill]\n", "m.yaml");
  ASSERT_TRUE(l) << l.error().message;
  EXPECT_EQ(l->base.rlimits.size(), 1u);
  for (const char* bad : {"target: [kvd]\nfaults: [sigkill]\nrlimits: {NOFILE: lots}\n",
                          "target: [kvd]\nfaults: [sigkill]\nrlimits: [NOFILE=1, NOFILE=9]\n",
                          "target: [kvd]\nfaults: [sigkill]\nrlimits: 64\n"}) {
    auto r = parse_matrix_spec(bad, "m.yaml");
    ASSERT_FALSE(r) << bad;
    EXPECT_NE(r.error().message.find("m.yaml:3:"), std::string::npos) << r.error().message;
  }
}

TEST(DiskFullSpec, GrammarAndMatrixKeys) {
  auto t = parse_disk_full("--disk-full", "tmpfs:16M");
  ASSERT_TRUE(t) << t.error().message;
  EXPECT_EQ(t->on, DiskFull::On::tmpfs);
  EXPECT_EQ(t->size, 16u << 20);
  auto f = parse_disk_full("--disk-full", "fs");
  ASSERT_TRUE(f);
  EXPECT_EQ(f->on, DiskFull::On::fs);
  auto e = parse_disk_full("--disk-full", "ext4:64M");
  ASSERT_TRUE(e) << e.error().message;
  EXPECT_EQ(e->on, DiskFull::On::ext4);
  EXPECT_EQ(e->size, 64u << 20);
  for (const char* bad : {"tmpfs", "tmpfs:", "tmpfs:1K", "tmpfs:2048G", "tmpfs:1X", "ext4:1M",
                          "ext4", "ext3:64M", ""})
    EXPECT_FALSE(parse_disk_full("--disk-full", bad)) << bad;
  DiskFull at;
  ASSERT_TRUE(parse_fill_at("--fill-at", "op:7", at));
  EXPECT_EQ(at.fill_at_op, 7u);
  EXPECT_EQ(at.fill_at_text(), "op:7");
  for (const char* bad : {"op:0", "op:", "op:x", "op:-1", "op:1000000001", "7", "op:7ms"}) {
    DiskFull d;
    auto r = parse_fill_at("--fill-at", bad, d);
    ASSERT_FALSE(r) << bad;
    EXPECT_TRUE(r.error().message.starts_with("--fill-at")) << r.error().message;
  }
  EXPECT_EQ(parse_byte_size("4K"), 4096u);
  EXPECT_FALSE(parse_byte_size("99999999999999999G"));

  auto m = parse_matrix_spec(
      "target: [kvd]\ndisk_full: {on: tmpfs:1M, free: 4K, fill_at: 20ms}\nfaults: [sigkill]\n",
      "m.yaml");
  ASSERT_TRUE(m) << m.error().message;
  ASSERT_TRUE(m->base.disk_full);
  EXPECT_EQ(m->base.disk_full->free, 4096u);
  EXPECT_EQ(m->base.disk_full->fill_at, std::chrono::milliseconds(20));
  EXPECT_NE(repro_command(m->base).find("--disk-full tmpfs:1M --disk-free 4096 --fill-at 20ms"),
            std::string::npos)
      << repro_command(m->base);
  auto op = parse_matrix_spec(
      "target: [kvd]\ndisk_full: {on: ext4:8M, fill_at: op:3}\nfaults: [sigkill]\n", "m.yaml");
  ASSERT_TRUE(op) << op.error().message;
  EXPECT_NE(repro_command(op->base).find("--disk-full ext4:8M --fill-at op:3"), std::string::npos)
      << repro_command(op->base);
  auto scalar =
      parse_matrix_spec("target: [kvd]\ndisk_full: fs\nmemory: 64M\nfaults: [sigkill]\n", "m.yaml");
  ASSERT_TRUE(scalar) << scalar.error().message;
  EXPECT_EQ(scalar->base.memory, 64u << 20);
  EXPECT_NE(repro_command(scalar->base).find("--memory 67108864"), std::string::npos);
  for (const char* bad : {"target: [kvd]\nfaults: [sigkill]\ndisk_full: ext4\n",
                          "target: [kvd]\nfaults: [sigkill]\ndisk_full: {free: 1K}\n",
                          "target: [kvd]\nfaults: [sigkill]\ndisk_full: {on: fs, when: 1s}\n",
                          "target: [kvd]\nfaults: [sigkill]\ndisk_full: {on: fs, free: x}\n",
                          "target: [kvd]\nfaults: [sigkill]\ndisk_full: {on: fs, fill_at: op:0}\n",
                          "target: [kvd]\nfaults: [sigkill]\nmemory: 4K\n"}) {
    auto r = parse_matrix_spec(bad, "m.yaml");
    ASSERT_FALSE(r) << bad;
    EXPECT_NE(r.error().message.find("m.yaml:3:"), std::string::npos) << r.error().message;
  }
}

}  // namespace
}  // namespace crashkit
