#include "crashkit/harness/report.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>

#include "markup.hpp"
#include "matrix/baseline_report.hpp"

namespace crashkit {
using markup::secs;

int matrix_exit_code(const std::vector<MatrixResult>& results, const BaselineVerdict* baseline) {
  if (baseline) return baseline->regressed() ? exit_code::finding : exit_code::ok;
  bool harness = false;
  for (const auto& r : results) {
    if (is_finding(r.result.outcome)) return exit_code::finding;
    harness = harness || r.result.outcome == Outcome::harness_error;
  }
  return harness ? exit_code::harness_error : exit_code::ok;
}

std::string matrix_summary(const std::vector<MatrixResult>& results, const MatrixPlan& plan,
                           Duration wall, const BaselineVerdict* baseline) {
  std::map<Outcome, std::size_t> counts;
  for (const auto& r : results) ++counts[r.result.outcome];
  const double ran = static_cast<double>(results.size() * plan.repeat);
  std::string out =
      fmt::format("\ncrash matrix: {} cell(s){} in {:.1f}s ({:.2f} cells/s), seed {}",
                  results.size(), plan.repeat > 1 ? fmt::format(" x {} repeats", plan.repeat) : "",
                  secs(wall), secs(wall) > 0 ? ran / secs(wall) : 0.0, plan.seed);
  if (plan.total_before_shard != results.size())
    out += fmt::format(", this shard of {} cells", plan.total_before_shard);
  out += "\n";
  for (auto o : kOutcomes)
    if (counts[o] > 0) out += fmt::format("  {:<18} {}\n", to_string(o), counts[o]);
  bool header = false;
  for (const auto& r : results) {
    if (!needs_attention(r.result.outcome)) continue;
    if (!header) out += "findings:\n";
    header = true;
    out += fmt::format("  {} [{}] {}\n    repro: {}\n", r.cell.id, to_string(r.result.outcome),
                       r.result.reason, r.repro);
    if (r.result.kept) out += fmt::format("    artifacts: {}\n", r.result.run_dir.string());
  }
  bool noted = false;
  for (const auto& n : plan.notes) {
    if (!noted) out += "notes:\n";
    noted = true;
    out += fmt::format("  discovery: {}\n", n);
  }
  for (const auto& r : results) {
    for (const auto& n : r.result.notes) {
      if (!noted) out += "notes:\n";
      noted = true;
      out += fmt::format("  {}: {}\n", r.cell.id, n);
    }
  }
  if (!plan.uncovered.empty()) {
    out += "coverage gap: the workload never crossed:";
    for (const auto& p : plan.uncovered) out += " " + p;
    out += "\n";
  }
  if (baseline) out += baseline_summary(*baseline);
  return out;
}

std::string junit_xml(const std::vector<MatrixResult>& results, Duration wall,
                      const BaselineVerdict* baseline) {
  std::size_t failures = 0, errors = 0, skipped = 0;
  for (const auto& r : results) {
    failures += is_finding(r.result.outcome);
    errors += r.result.outcome == Outcome::harness_error;
    skipped += r.result.outcome == Outcome::fault_not_reached;
  }
  std::size_t conditions = baseline ? baseline->conditions.size() : 0, regressions = 0;
  if (baseline)
    for (const auto& c : baseline->conditions) regressions += !c.held;
  std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  out += fmt::format(
      "<testsuites tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{:.3f}\">\n",
      results.size() + conditions, failures + regressions, errors, skipped, secs(wall));
  out += fmt::format(
      "  <testsuite name=\"crashkit.matrix\" tests=\"{}\" failures=\"{}\" errors=\"{}\" "
      "skipped=\"{}\" time=\"{:.3f}\">\n",
      results.size(), failures, errors, skipped, secs(wall));
  for (const auto& r : results) {
    out += fmt::format("    <testcase classname=\"crashkit.matrix\" name=\"{}\" time=\"{:.3f}\"",
                       markup::escape(r.cell.id), secs(r.elapsed));
    const auto& res = r.result;
    if (res.outcome == Outcome::pass) {
      out += "/>\n";
      continue;
    }
    out += ">\n";
    std::string body = markup::escape(fmt::format("{}\nrepro: {}", res.reason, r.repro));
    if (is_finding(res.outcome))
      out += fmt::format("      <failure type=\"{}\" message=\"{}\">{}</failure>\n",
                         to_string(res.outcome), markup::escape(res.reason), body);
    else if (res.outcome == Outcome::harness_error)
      out += fmt::format("      <error type=\"harness_error\" message=\"{}\">{}</error>\n",
                         markup::escape(res.reason), body);
    else
      out += fmt::format("      <skipped message=\"{}\"/>\n", markup::escape(res.reason));
    out += "    </testcase>\n";
  }
  out += "  </testsuite>\n";
  if (baseline) out += detail::baseline_junit(*baseline);
  out += "</testsuites>\n";
  return out;
}

// A group cell's replicas: how many, and per fault (cycle or scenario step) which were hit and
// each one's restart -> READY.
nlohmann::json group_json(const CellSpec& spec, const CellResult& res) {
  nlohmann::json events = nlohmann::json::array();
  for (const auto& cr : res.cycles) {
    nlohmann::json recovery = nlohmann::json::array();
    for (auto d : cr.recoveries) recovery.push_back(markup::millis(d));
    events.push_back({{"cycle", cr.cycle}, {"hit", cr.hit}, {"recovery_ms", recovery}});
  }
  return {{"count", spec.replicas}, {"cycles", events}};
}

std::string matrix_json(const std::vector<MatrixResult>& results, const MatrixPlan& plan,
                        Duration wall, const BaselineVerdict* baseline) {
  nlohmann::json j;
  j["seed"] = plan.seed;
  j["cells_total"] = plan.total_before_shard;
  j["wall_seconds"] = secs(wall);
  j["repeat"] = plan.repeat;
  j["uncovered_points"] = plan.uncovered;
  nlohmann::json counts = nlohmann::json::object();
  auto& cells = j["cells"] = nlohmann::json::array();
  for (const auto& r : results) {
    const auto& res = r.result;
    counts[std::string(to_string(res.outcome))] =
        counts.value(std::string(to_string(res.outcome)), 0) + 1;
    nlohmann::json c{{"id", r.cell.id},
                     {"fault", fault_label(r.cell.spec)},
                     {"outcome", to_string(res.outcome)},
                     {"finding", is_finding(res.outcome)},
                     {"reason", res.reason},
                     {"repro", r.repro},
                     {"seconds", secs(r.elapsed)},
                     {"fired", res.fired},
                     {"notes", res.notes}};
    if (!r.cell.point.empty()) {
      c["point"] = r.cell.point;
      c["crossing"] = r.cell.crossing;
    }
    if (auto rec = res.last_recovery()) c["recovery_ms"] = markup::millis(*rec);
    if (is_group(r.cell.spec)) c["replicas"] = group_json(r.cell.spec, res);
    if (res.kept) c["artifacts"] = res.run_dir.string();
    cells.push_back(std::move(c));
  }
  j["counts"] = counts;
  if (baseline) j["baseline"] = detail::baseline_report_json(*baseline);
  return j.dump(2) + "\n";
}

Status write_report_file(const std::filesystem::path& path, const std::string& content) {
  auto fail = [&](const char* what) {
    return usage_error(
        fmt::format("report {}: {} failed: {}; pick a writable directory with "
                    "free space",
                    path.string(), what, std::strerror(errno)));
  };
  std::string tmp = path.string() + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return fail("create");
  std::size_t off = 0;
  while (off < content.size()) {
    ssize_t n = ::write(fd, content.data() + off, content.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int e = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      errno = e;
      return fail("write");
    }
    off += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) {
    int e = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    errno = e;
    return fail("fsync");
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return fail("rename");
  return ok();
}

}  // namespace crashkit
