// `crashkit matrix SPEC.yaml`: expand, shard, run in parallel, report.
#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <memory>
#include <random>
#include <thread>

#include "crashkit/crash_protocol.hpp"  // parse_number: the one parser of whole numbers
#include "crashkit/harness/baseline.hpp"
#include "crashkit/harness/matrix.hpp"
#include "crashkit/harness/report.hpp"
#include "run_command.hpp"

namespace crashkit::cli {
namespace {

namespace fs = std::filesystem;

struct MatrixOptions {
  std::string spec;
  unsigned jobs = std::max(1u, std::thread::hardware_concurrency());
  std::string seed;
  std::string shard;
  std::vector<std::string> cells;
  std::string junit;
  std::string json;
  std::string html;
  std::string keep_failed;
  std::string baseline;       // --baseline FILE: judge this run against it
  std::string save_baseline;  // --save-baseline FILE: write what this run measured
  unsigned repeat = 1;
  bool quiet = false;
};

// The report files `crashkit matrix` can write: its flag, where the path is kept, and how
// the report is rendered (only when asked for).
struct ReportFile {
  const char* flag;
  std::string MatrixOptions::*path;
  std::string (*render)(const std::vector<MatrixResult>&, const MatrixPlan&, Duration,
                        const BaselineVerdict*);
};

const ReportFile kReports[] = {
    {"--junit", &MatrixOptions::junit,
     [](const std::vector<MatrixResult>& r, const MatrixPlan&, Duration w,
        const BaselineVerdict* b) { return junit_xml(r, w, b); }},
    {"--json", &MatrixOptions::json, matrix_json},
    {"--html", &MatrixOptions::html, matrix_html},
};

int usage(const std::string& message) {
  fmt::print(stderr, "crashkit: {}\n", message);
  return exit_code::usage;
}

// "--shard I/N", else GTEST_SHARD_INDEX / GTEST_TOTAL_SHARDS, else 0/1.
bool parse_shard(const std::string& text, std::size_t& index, std::size_t& count) {
  std::string s = text;
  if (s.empty()) {
    const char* i = std::getenv("GTEST_SHARD_INDEX");
    const char* n = std::getenv("GTEST_TOTAL_SHARDS");
    if (i == nullptr || n == nullptr) return true;
    s = std::string(i) + "/" + n;
  }
  auto slash = s.find('/');
  if (slash == std::string::npos) return false;
  auto i = parse_number<std::size_t>(std::string_view(s).substr(0, slash));
  auto n = parse_number<std::size_t>(std::string_view(s).substr(slash + 1));
  if (!i || !n) return false;
  index = *i;
  count = *n;
  return count >= 1 && index < count;
}

// --shard and --seed into `ex`; nullopt, or the exit code of a usage error.
std::optional<int> read_expand_options(const MatrixOptions& o, ExpandOptions& ex) {
  if (!parse_shard(o.shard, ex.shard_index, ex.shard_count))
    return usage(fmt::format("--shard '{}': write I/N with 0 <= I < N (e.g. 0/4)", o.shard));
  if (o.seed.empty()) {
    ex.seed = std::random_device{}();
  } else if (auto seed = parse_number<std::uint64_t>(o.seed)) {
    ex.seed = *seed;
  } else {
    return usage(fmt::format("--seed '{}': a whole number", o.seed));
  }
  ex.only = o.cells;
  return std::nullopt;
}

// --keep-failed and the report paths are checked before the matrix runs, not after minutes
// of cells. nullopt, or the exit code of a usage error.
std::optional<int> check_output_paths(const MatrixOptions& o) {
  if (!o.keep_failed.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(o.keep_failed, ec);
    if (ec || access(o.keep_failed.c_str(), W_OK) != 0)
      return usage(fmt::format("--keep-failed {}: not a writable directory", o.keep_failed));
  }
  std::vector<std::pair<const char*, const std::string*>> outputs{
      {"--save-baseline", &o.save_baseline}};
  for (const auto& report : kReports) outputs.emplace_back(report.flag, &(o.*report.path));
  for (const auto& [flag, path] : outputs) {
    if (path->empty()) continue;
    auto dir = std::filesystem::path(*path).parent_path();
    if (dir.empty()) dir = ".";
    if (access(dir.c_str(), W_OK) != 0)
      return usage(fmt::format("{} {}: directory {} is not writable; create it or pick another",
                               flag, *path, dir.string()));
  }
  return std::nullopt;
}

// --baseline FILE, read before anything runs; its seed is this run's unless --seed is given,
// so that sampled crossings pick the same cells. nullopt when not asked for, or a usage error.
Result<std::optional<Baseline>> read_baseline(const MatrixOptions& o, ExpandOptions& ex) {
  if (o.baseline.empty() && o.save_baseline.empty()) return std::optional<Baseline>();
  if (ex.shard_count > 1 || !ex.only.empty())
    return usage_error(
        "--baseline and --save-baseline judge whole matrices: drop --shard and --cell (and unset "
        "GTEST_TOTAL_SHARDS), or keep one baseline per spec");
  if (o.baseline.empty()) return std::optional<Baseline>();
  auto b = load_baseline(o.baseline);
  if (!b) return b.error();
  if (o.seed.empty()) ex.seed = b->seed;
  return std::optional<Baseline>(std::move(*b));
}

// Progress on stderr: a bar on a terminal, one line per cell otherwise.
std::function<void(std::size_t, std::size_t, const MatrixResult&)> progress(bool quiet) {
  const bool tty = isatty(STDERR_FILENO) == 1;
  return [quiet, tty](std::size_t done, std::size_t total, const MatrixResult& r) {
    if (quiet) return;
    if (tty) {
      std::size_t width = 30, filled = total ? done * width / total : width;
      fmt::print(stderr, "\r[{}{}] {}/{} {:<40.40}", std::string(filled, '#'),
                 std::string(width - filled, '.'), done, total, r.cell.id);
      if (done == total) fmt::print(stderr, "\n");
    } else {
      fmt::print(stderr, "[{}/{}] {}: {}\n", done, total, r.cell.id, to_string(r.result.outcome));
    }
  };
}

// Copies one regular file with read/write, so that a full disk is reported as ENOSPC (the
// library's sendfile path reports any short write as EIO). 0 or the errno.
int copy_file_contents(const fs::path& from, const fs::path& to, fs::perms perms) {
  int in = open(from.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return errno;
  int out = open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
                 static_cast<mode_t>(perms & fs::perms::mask));
  int error = out < 0 ? errno : 0;
  char buf[1 << 16];
  while (error == 0) {
    ssize_t n = read(in, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      error = n < 0 ? errno : 0;
      break;
    }
    for (ssize_t done = 0; done < n && error == 0;) {
      ssize_t w = write(out, buf + done, static_cast<std::size_t>(n - done));
      if (w < 0 && errno != EINTR) error = errno;
      if (w > 0) done += w;
    }
  }
  if (out >= 0 && close(out) != 0 && error == 0) error = errno;
  close(in);
  return error;
}

// A copy of the tree `from` as `to` (which must not exist): directories, regular files and
// symlinks. Sockets and FIFOs (a daemon's, the notify socket) carry no evidence and are left
// out. The first failure comes back as one line naming the file.
std::optional<std::string> copy_tree(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  if (!fs::create_directory(to, ec) || ec)
    return fmt::format("{}: {}", to.string(), ec ? ec.message() : "exists");
  fs::recursive_directory_iterator it(from, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    const fs::path target = to / it->path().lexically_relative(from);
    const auto st = it->symlink_status(ec);
    if (ec) break;
    if (fs::is_directory(st))
      fs::create_directory(target, ec);
    else if (fs::is_regular_file(st))
      ec.assign(copy_file_contents(it->path(), target, st.permissions()), std::generic_category());
    else if (fs::is_symlink(st))
      fs::copy_symlink(it->path(), target, ec);
    if (ec) return fmt::format("{}: {}", target.string(), ec.message());
  }
  if (ec) return fmt::format("{}: {}", from.string(), ec.message());
  return std::nullopt;
}

// Where a run dir is after move_run_dir(), and why not at its destination when it is not.
struct Move {
  fs::path now_in;
  std::optional<std::string> failure;
};

// Moves the run dir `from` to `to`, replacing an earlier `to` only once the new one is whole.
// Across file systems it is a copy, and `from` is removed only after the copy succeeded: a
// failed copy (a full disk) is undone and `from`, the evidence, stays where it was.
Move move_run_dir(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  const fs::path staged = to.string() + ".partial";
  fs::remove_all(staged, ec);  // a leftover of an interrupted earlier move
  fs::rename(from, staged, ec);
  const bool copied = ec == std::errc::cross_device_link;
  if (copied) {
    if (auto failed = copy_tree(from, staged)) {
      fs::remove_all(staged, ec);
      return {from, failed};
    }
  } else if (ec) {
    return {from, ec.message()};
  }
  fs::remove_all(to, ec);
  fs::rename(staged, to, ec);
  if (ec) {
    std::string why = ec.message();
    if (copied) {
      fs::remove_all(staged, ec);
      return {from, why};
    }
    fs::rename(staged, from, ec);  // the same directory it came from
    return {ec ? staged : from, why};
  }
  if (copied) fs::remove_all(from, ec);
  return {to, std::nullopt};
}

// --keep-failed: move the run dir of every kept cell that did not pass into `dest_dir`. One
// that cannot be moved stays where it is, and one line says where.
void move_failed_run_dirs(std::vector<MatrixResult>& results, const std::string& dest_dir) {
  for (auto& r : results) {
    if (!r.result.kept || r.result.outcome == Outcome::pass) continue;
    auto dest = fs::path(dest_dir) / r.cell.id;
    Move m = move_run_dir(r.result.run_dir, dest);
    if (m.failure)
      fmt::print(stderr,
                 "crashkit: --keep-failed: cannot move cell {} to {} ({}); its run dir stays in "
                 "{}\n",
                 r.cell.id, dest.string(), *m.failure, m.now_in.string());
    r.result.run_dir = m.now_in;
  }
}

// Runs the cells --repeat times; each run's wall time is its own (discovery excluded).
std::vector<MatrixRun> run_repeats(const MatrixOptions& o, const MatrixPlan& plan) {
  std::vector<MatrixRun> runs;
  for (unsigned k = 0; k < o.repeat; ++k) {
    if (o.repeat > 1 && !o.quiet)
      fmt::print(stderr, "crashkit: repeat {} of {}\n", k + 1, o.repeat);
    auto t0 = Clock::now();
    auto results = run_matrix(plan.cells, {.jobs = o.jobs, .on_done = progress(o.quiet)});
    runs.push_back({std::move(results), Clock::now() - t0});
  }
  return runs;
}

int execute(const MatrixOptions& o) {
  ExpandOptions ex;
  if (auto code = read_expand_options(o, ex)) return *code;
  if (auto code = check_output_paths(o)) return *code;
  auto before = read_baseline(o, ex);
  if (!before) return usage(before.error().message);
  auto spec = load_matrix_spec(o.spec);
  if (!spec) return usage(spec.error().message);
  for (const auto& n : spec->notes) fmt::print(stderr, "crashkit: {}\n", n);
  if (!o.quiet)
    ex.log = [](std::string_view l) { fmt::print(stderr, "crashkit: discovery: {}\n", l); };
  auto t0 = Clock::now();
  auto plan = expand_matrix(*spec, ex);
  if (!plan) {
    fmt::print(stderr, "crashkit: {}\n", plan.error().message);
    return plan.error().kind == ErrorKind::usage ? exit_code::usage : exit_code::harness_error;
  }
  fmt::print(
      stderr, "crashkit: {} cell(s), -j{}, seed {}{}\n", plan->cells.size(), o.jobs, plan->seed,
      ex.shard_count > 1 ? fmt::format(", shard {}/{}", ex.shard_index, ex.shard_count) : "");
  plan->repeat = o.repeat;
  auto runs = run_repeats(o, *plan);
  Duration wall = Clock::now() - t0;
  auto results = merge_repeats(runs);
  if (!o.keep_failed.empty()) move_failed_run_dirs(results, o.keep_failed);
  std::optional<BaselineVerdict> verdict;
  std::vector<std::pair<std::string, std::string>> files;  // path, content
  if (*before || !o.save_baseline.empty()) {
    Baseline now = measure_baseline(runs, o.spec, plan->seed);
    now.jobs = o.jobs;
    if (*before) {
      verdict = compare_baseline(**before, now, spec->baseline);
      verdict->file = o.baseline;
    }
    if (!o.save_baseline.empty()) files.emplace_back(o.save_baseline, baseline_json(now));
  }
  const BaselineVerdict* v = verdict ? &*verdict : nullptr;
  fmt::print("{}", matrix_summary(results, *plan, wall, v));
  for (const auto& report : kReports)
    if (!(o.*report.path).empty())
      files.emplace_back(o.*report.path, report.render(results, *plan, wall, v));
  for (const auto& [path, content] : files) {
    if (auto s = write_report_file(path, content); !s) {
      fmt::print(stderr, "crashkit: {}\n", s.error().message);
      return exit_code::harness_error;
    }
  }
  if (!o.save_baseline.empty())
    fmt::print(stderr, "crashkit: baseline saved: {}\n", o.save_baseline);
  return matrix_exit_code(results, v);
}

}  // namespace

std::function<int()> add_matrix_command(CLI::App& app) {
  auto o = std::make_shared<MatrixOptions>();
  CLI::App* cmd = app.add_subcommand("matrix", "Run a crash matrix from a YAML spec.");
  cmd->footer(
      "Sharding also honours GTEST_SHARD_INDEX / GTEST_TOTAL_SHARDS.\n"
      "Exit codes: 0 no findings, 1 finding, 2 spec error, 3 harness error.\n"
      "With --baseline: 1 on a regression (a failed condition), else 0.");
  cmd->add_option("spec", o->spec, "matrix YAML file")->required();
  cmd->add_option("-j,--jobs", o->jobs, "cells run in parallel (default: number of cores)")
      ->check(at_least_one());
  cmd->add_option("--seed", o->seed, "seed for sampled crossings (default: random, printed)");
  cmd->add_option("--shard", o->shard, "run shard I of N (I/N)");
  cmd->add_option("--cell", o->cells, "run only this cell id (repeatable; ids as in the report)");
  cmd->add_option("--junit", o->junit, "write JUnit XML here");
  cmd->add_option("--json", o->json, "write JSON here");
  cmd->add_option("--html", o->html, "write a self-contained HTML report here");
  cmd->add_option("--keep-failed", o->keep_failed, "move failing cells' run dirs here");
  cmd->add_option("--repeat", o->repeat,
                  "run the cells K times: timing is judged on medians, a cell by its worst repeat")
      ->check(CLI::Range(1u, 100u));
  cmd->add_option("--baseline", o->baseline,
                  "judge this run against a saved baseline: exit 1 on a regression");
  cmd->add_option("--save-baseline", o->save_baseline, "save what this run measured as a baseline");
  cmd->add_flag("-q,--quiet", o->quiet, "no progress output");
  return [o] { return execute(*o); };
}

}  // namespace crashkit::cli
