// Fuzzes the matrix spec reader (`crashkit matrix SPEC`, CRASHKIT_CRASH_MATRIX): YAML text
// through parse_matrix_spec, the function load_matrix_spec hands the file's text to.
//
// Properties: no exception escapes (yaml-cpp's are turned into errors); a rejection is a usage
// error "FILE:LINE: ..." naming the spec; an accepted spec has a target and faults,
// every crash_points action is exactly one action of the plan grammar, every powerloss fault is
// a --fault that loses power, crossings and samples are >= 1, and its cells' repro line (built
// from the spec's base) can be written.
#include <fmt/format.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "crashkit/crash_plan.hpp"
#include "crashkit/harness/cell.hpp"
#include "crashkit/harness/matrix.hpp"
#include "crashkit/harness/net_fault.hpp"
#include "property.hpp"

namespace {

using crashkit::MatrixFault;
using crashkit::fuzz::broken;

// Relative: errors name it as given, relative paths in the spec resolve against the cwd.
const std::filesystem::path kSpecFile = "matrix.yaml";

void check_rejection(const crashkit::Error& error) {
  if (error.kind != crashkit::ErrorKind::usage) broken("matrix: rejection is not a usage error");
  // One line: yaml-cpp's messages and the keys and values quoted in them are escaped.
  crashkit::fuzz::require_one_line_message(error.message, "matrix");
  const auto at = error.message.find(kSpecFile.string() + ":");
  const auto line = at == std::string::npos ? at : at + kSpecFile.string().size() + 1;
  if (line == std::string::npos || line >= error.message.size() || error.message[line] < '0' ||
      error.message[line] > '9')
    broken("matrix: rejection is not 'FILE:LINE: ...': " + error.message);
}

void check_action(const MatrixFault& f) {
  auto plan = crashkit::parse_crash_plan("x@1=" + f.action);
  const auto* rules = std::get_if<std::vector<crashkit::CrashRule>>(&plan);
  if (!rules || rules->size() != 1)
    broken(fmt::format("matrix: action '{}' accepted, not one action of the grammar", f.action));
}

void check_fault(const MatrixFault& f) {
  switch (f.kind) {
    case MatrixFault::Kind::crash_points:
      check_action(f);
      for (auto c : f.crossings)
        if (c == 0) broken("matrix: crossing 0 accepted");
      if (f.sample && *f.sample == 0) broken("matrix: sample 0 accepted");
      break;
    case MatrixFault::Kind::powerloss: {
      auto parsed = crashkit::Fault::parse(f.powerloss);
      if (!parsed || !parsed->loses_power())
        broken(fmt::format("matrix: powerloss fault '{}' accepted, not a power-loss --fault",
                           f.powerloss));
      break;
    }
    case MatrixFault::Kind::sigkill:
      for (auto d : f.after)
        if (d.count() < 0) broken("matrix: negative sigkill after accepted");
      break;
    case MatrixFault::Kind::sigterm:
      break;
    case MatrixFault::Kind::net:
      if (f.net.empty()) broken("matrix: net fault accepted without a toxic");
      for (const auto& t : f.net)
        if (t.link.empty() || !crashkit::parse_net_toxic(t.toxic.text))
          broken(fmt::format("matrix: net toxic '{}' accepted, not LINK:TOXIC", t.toxic.text));
      break;
  }
}

// An accepted fill_at, printed as --fill-at would read it, parses back to itself.
bool reparsed_fill_at(const crashkit::DiskFull& d) {
  crashkit::DiskFull again;
  return crashkit::parse_fill_at("fill_at", d.fill_at_text(), again) &&
         again.fill_at_op == d.fill_at_op && again.fill_at == d.fill_at;
}

void check_spec(const crashkit::MatrixSpec& spec) {
  if (spec.base.target.empty()) broken("matrix: accepted without a target");
  if (spec.faults.empty()) broken("matrix: accepted without faults");
  for (const auto& f : spec.faults) check_fault(f);
  for (const auto& kv : spec.base.extra_env)
    if (kv.find('=') == std::string::npos) broken("matrix: env entry without '=': " + kv);
  for (auto d : {spec.base.ready_timeout, spec.base.stop_timeout, spec.base.command_timeout})
    if (d.count() < 0) broken("matrix: negative timeout accepted");
  for (const auto& l : spec.base.rlimits)
    if (l.soft > l.hard || !crashkit::parse_resource_limit("rlimits", l.text))
      broken("matrix: rlimit accepted that --rlimit would refuse: " + l.text);
  if (const auto& d = spec.base.disk_full;
      d && (!crashkit::parse_disk_full("disk_full", d->text) ||
            (d->on == crashkit::DiskFull::On::tmpfs && d->size < (64u << 10)) ||
            (d->on == crashkit::DiskFull::On::ext4 && d->size < (2u << 20)) ||
            (d->fill_at_op > 0 && d->fill_at) || (d->fills_later() && !reparsed_fill_at(*d))))
    broken("matrix: disk_full accepted that --disk-full would refuse: " + d->text);
  const auto& t = spec.baseline;
  for (double pct : {t.recovery_p50_pct, t.recovery_p99_pct, t.cells_per_s_pct})
    if (!(pct >= 0 && pct <= 10000)) broken(fmt::format("matrix: baseline percentage {}", pct));
  if (t.cells_per_s_pct > 100 || t.recovery_floor.count() < 0)
    broken("matrix: baseline threshold out of range accepted");
  if (crashkit::repro_command(spec.base).empty()) broken("matrix: empty repro line");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view yaml(reinterpret_cast<const char*>(data), size);
  auto spec = crashkit::parse_matrix_spec(yaml, kSpecFile);
  if (spec)
    check_spec(*spec);
  else
    check_rejection(spec.error());
  return 0;
}
