// Measuring a matrix run for a baseline, merging repeats, and the baseline file (JSON).
#include "crashkit/harness/baseline.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "crashkit/crash_protocol.hpp"  // printable_text
#include "markup.hpp"

namespace crashkit {
namespace {

constexpr int kFormat = 1;                   // "crashkit_baseline": the file's version
constexpr std::size_t kMaxBytes = 64 << 20;  // far above any real matrix's baseline
constexpr double kMaxMillis = 1e12;          // about 31 years: any larger is a bad file

using markup::median;

// Nearest rank: the smallest sample with at least p% of the samples at or below it.
double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size())));
  return v[std::clamp<std::size_t>(rank, 1, v.size()) - 1];
}

// Every restart -> READY of a cell: a group's per replica, else the cycle's.
void recovery_samples(const CellResult& res, std::vector<double>& out) {
  for (const auto& c : res.cycles) {
    if (!c.recoveries.empty()) {
      for (auto d : c.recoveries) out.push_back(markup::millis(d));
    } else if (c.recovery) {
      out.push_back(markup::millis(*c.recovery));
    }
  }
}

// Did the cell reach its fault? A crash cell: its point fired; any other: not fault_not_reached.
bool reached(const MatrixResult& r) {
  if (!r.cell.point.empty()) return !r.result.fired.empty();
  return r.result.outcome != Outcome::fault_not_reached;
}

// How bad an outcome is, for picking a cell's worst repeat.
int severity(Outcome o) {
  if (is_finding(o)) return 3;
  if (o == Outcome::harness_error) return 2;
  return o == Outcome::fault_not_reached ? 1 : 0;
}

}  // namespace

// Recovery p50 and p99 come from each cell's samples (cycles, replicas) taken as medians over
// the repeats, then pooled: a scheduling hiccup in one repeat moves no percentile unless it hit
// the same restart in most repeats. (A p99 over one run's ten restarts is its slowest one.)
Baseline measure_baseline(const std::vector<MatrixRun>& runs, const std::filesystem::path& spec,
                          std::uint64_t seed) {
  Baseline b;
  b.spec = spec.string();
  b.seed = seed;
  b.repeat = static_cast<unsigned>(runs.size());
  std::vector<double> rates;
  std::set<std::string> points;
  std::map<std::string, std::size_t> index;  // cell id -> position in b.cells
  struct Samples {
    std::vector<std::vector<double>> each;  // [sample j][repeat]: the j-th restart's times
    std::vector<double> last;               // last_recovery per repeat
  };
  std::vector<Samples> samples;
  for (const auto& run : runs) {
    double s = markup::secs(run.wall);
    rates.push_back(s > 0 ? static_cast<double>(run.results.size()) / s : 0);
    for (const auto& r : run.results) {
      for (const auto& f : r.result.fired) points.insert(f.substr(0, f.find('@')));
      auto [it, fresh] = index.try_emplace(r.cell.id, b.cells.size());
      if (fresh) {
        b.cells.push_back({.id = r.cell.id, .outcome = r.result.outcome});
        samples.emplace_back();
      }
      BaselineCell& c = b.cells[it->second];
      if (severity(r.result.outcome) > severity(c.outcome)) c.outcome = r.result.outcome;
      c.reached = c.reached && reached(r);
      Samples& mine = samples[it->second];
      std::vector<double> times;
      recovery_samples(r.result, times);
      if (mine.each.size() < times.size()) mine.each.resize(times.size());
      for (std::size_t j = 0; j < times.size(); ++j) mine.each[j].push_back(times[j]);
      if (auto rec = r.result.last_recovery()) mine.last.push_back(markup::millis(*rec));
    }
  }
  std::vector<double> pooled;
  for (std::size_t i = 0; i < b.cells.size(); ++i) {
    for (const auto& repeats : samples[i].each) pooled.push_back(median(repeats));
    if (!samples[i].last.empty()) b.cells[i].recovery_ms = median(samples[i].last);
  }
  b.cells_per_s = median(rates);
  if (!pooled.empty()) {
    b.recovery_p50_ms = percentile(pooled, 50);
    b.recovery_p99_ms = percentile(pooled, 99);
  }
  b.points_reached.assign(points.begin(), points.end());
  return b;
}

std::vector<MatrixResult> merge_repeats(const std::vector<MatrixRun>& runs) {
  if (runs.size() == 1) return runs[0].results;
  std::vector<MatrixResult> merged;
  if (runs.empty()) return merged;
  for (std::size_t i = 0; i < runs.back().results.size(); ++i) {
    std::size_t pick = runs.size() - 1;
    for (std::size_t k = 0; k < runs.size(); ++k)
      if (i < runs[k].results.size() && needs_attention(runs[k].results[i].result.outcome)) {
        pick = k;
        break;
      }
    MatrixResult r = runs[pick].results[i];
    for (std::size_t k = 0; k < runs.size(); ++k) {
      if (k == pick || i >= runs[k].results.size()) continue;
      const CellResult& other = runs[k].results[i].result;
      if (other.outcome == Outcome::pass ||
          (other.outcome == r.result.outcome && other.reason == r.result.reason && !other.kept))
        continue;  // nothing the picked repeat does not already say
      r.result.notes.push_back(
          fmt::format("repeat {} of {}: {}: {}{}", k + 1, runs.size(), to_string(other.outcome),
                      other.reason, other.kept ? "; run dir kept: " + other.run_dir.string() : ""));
    }
    merged.push_back(std::move(r));
  }
  return merged;
}

std::string baseline_json(const Baseline& b) {
  nlohmann::json j{{"crashkit_baseline", kFormat},
                   {"spec", b.spec},
                   {"seed", b.seed},
                   {"jobs", b.jobs},
                   {"repeat", b.repeat},
                   {"cells_per_s", b.cells_per_s},
                   {"points_reached", b.points_reached}};
  if (b.recovery_p50_ms)
    j["recovery_ms"] = {{"p50", *b.recovery_p50_ms}, {"p99", *b.recovery_p99_ms}};
  auto& cells = j["cells"] = nlohmann::json::array();
  for (const auto& c : b.cells) {
    nlohmann::json cell{{"id", c.id}, {"outcome", to_string(c.outcome)}, {"reached", c.reached}};
    if (c.recovery_ms) cell["recovery_ms"] = *c.recovery_ms;
    cells.push_back(std::move(cell));
  }
  return j.dump(2) + "\n";
}

namespace {

struct BadBaseline {
  std::string what;
};

// A non-negative finite number no larger than kMaxMillis (milliseconds, or cells/s).
double number_field(const nlohmann::json& j, const char* key) {
  if (!j.contains(key) || !j[key].is_number())
    throw BadBaseline{fmt::format("'{}' is not a number", key)};
  double v = j[key].get<double>();
  if (!std::isfinite(v) || v < 0 || v > kMaxMillis)
    throw BadBaseline{fmt::format("'{}' is {}, out of 0 to {:g}", key, v, kMaxMillis)};
  return v;
}

BaselineCell cell_of(const nlohmann::json& c, std::set<std::string>& ids) {
  if (!c.is_object() || !c.contains("id") || !c["id"].is_string())
    throw BadBaseline{"a cell without a string 'id'"};
  BaselineCell cell{.id = c["id"].get<std::string>()};
  if (!ids.insert(cell.id).second) throw BadBaseline{fmt::format("cell '{}' twice", cell.id)};
  auto outcome = c.contains("outcome") && c["outcome"].is_string()
                     ? outcome_from_string(c["outcome"].get<std::string>())
                     : std::nullopt;
  if (!outcome) throw BadBaseline{fmt::format("cell '{}' has no known 'outcome'", cell.id)};
  cell.outcome = *outcome;
  if (!c.contains("reached") || !c["reached"].is_boolean())
    throw BadBaseline{fmt::format("cell '{}' has no boolean 'reached'", cell.id)};
  cell.reached = c["reached"].get<bool>();
  if (c.contains("recovery_ms")) cell.recovery_ms = number_field(c, "recovery_ms");
  return cell;
}

Baseline baseline_of(const nlohmann::json& j) {
  if (!j.is_object() || !j.contains("crashkit_baseline"))
    throw BadBaseline{"no 'crashkit_baseline' key: not a crashkit baseline"};
  if (j["crashkit_baseline"] != kFormat)
    throw BadBaseline{fmt::format("baseline format {} (this crashkit reads {})",
                                  j["crashkit_baseline"].dump(), kFormat)};
  Baseline b;
  if (j.contains("spec") && j["spec"].is_string()) b.spec = j["spec"].get<std::string>();
  if (!j.contains("seed") || !j["seed"].is_number_unsigned())
    throw BadBaseline{"'seed' is not a whole number"};
  b.seed = j["seed"].get<std::uint64_t>();
  if (!j.contains("repeat") || !j["repeat"].is_number_unsigned() || j["repeat"] == 0 ||
      j["repeat"].get<std::uint64_t>() > 1000)
    throw BadBaseline{"'repeat' is not a whole number from 1 to 1000"};
  b.repeat = j["repeat"].get<unsigned>();
  if (j.contains("jobs")) {
    if (!j["jobs"].is_number_unsigned() || j["jobs"].get<std::uint64_t>() > 100000)
      throw BadBaseline{"'jobs' is not a whole number"};
    b.jobs = j["jobs"].get<unsigned>();
  }
  b.cells_per_s = number_field(j, "cells_per_s");
  if (j.contains("recovery_ms")) {
    b.recovery_p50_ms = number_field(j["recovery_ms"], "p50");
    b.recovery_p99_ms = number_field(j["recovery_ms"], "p99");
  }
  if (!j.contains("points_reached") || !j["points_reached"].is_array())
    throw BadBaseline{"'points_reached' is not a list"};
  for (const auto& p : j["points_reached"]) {
    if (!p.is_string()) throw BadBaseline{"'points_reached' holds a non-string"};
    b.points_reached.push_back(p.get<std::string>());
  }
  if (!j.contains("cells") || !j["cells"].is_array()) throw BadBaseline{"'cells' is not a list"};
  std::set<std::string> ids;
  for (const auto& c : j["cells"]) b.cells.push_back(cell_of(c, ids));
  return b;
}

}  // namespace

Result<Baseline> parse_baseline(std::string_view json, const std::filesystem::path& file) {
  auto bad = [&](const std::string& what) {
    return usage_error(
        fmt::format("--baseline {}: {}; save one with crashkit matrix SPEC --save-baseline {}",
                    file.string(), printable_text(what, 160), file.string()));
  };
  if (json.size() > kMaxBytes) return bad("larger than 64 MiB");
  nlohmann::json j = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return bad("not JSON");
  try {
    return baseline_of(j);
  } catch (const BadBaseline& e) {
    return bad(e.what);
  } catch (const nlohmann::json::exception& e) {  // a number out of its type's range
    return bad(e.what());
  }
}

Result<Baseline> load_baseline(const std::filesystem::path& file) {
  std::error_code ec;
  if (std::filesystem::is_directory(file, ec))
    return usage_error(
        fmt::format("--baseline {}: a directory, not a baseline file", file.string()));
  std::ifstream in(file, std::ios::binary);
  if (!in)
    return usage_error(
        fmt::format("--baseline {}: cannot read it; save one first with crashkit matrix SPEC "
                    "--save-baseline {}",
                    file.string(), file.string()));
  std::string text;
  char buf[1 << 16];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    text.append(buf, static_cast<std::size_t>(in.gcount()));
    if (text.size() > kMaxBytes) break;  // parse_baseline refuses it
  }
  return parse_baseline(text, file);
}

}  // namespace crashkit
