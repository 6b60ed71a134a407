// Power-loss cells: every start of the target runs under the journal shim with a fresh journal;
// after the SIGKILL of its whole process tree, and before anything restarts (PostgreSQL fsyncs
// its whole data dir at start-up, which would make lost data durable), roll_back() undoes what
// the journals show was never durable. The report is an artifact: powerloss.<cycle>.txt.
#include <elf.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "cell_run.hpp"
#include "crashkit/powerloss_journal.hpp"

namespace crashkit::detail {
namespace {

namespace fs = std::filesystem;

// The shim: $CRASHKIT_POWERLOSS_SHIM, else next to an installed crashkit
// (<prefix>/bin/crashkit -> <prefix>/<libdir>/crashkit/), else the build tree's.
Result<std::string> shim_path() {
  if (const char* env = std::getenv("CRASHKIT_POWERLOSS_SHIM"); env != nullptr && *env != '\0')
    return std::string(env);
  std::error_code ec;
  const auto exe = fs::read_symlink("/proc/self/exe", ec);
  const fs::path installed = exe.parent_path().parent_path() / CRASHKIT_INSTALL_LIBDIR /
                             "crashkit/libcrashkit_powerloss.so";
  for (const fs::path& p : {installed, fs::path(CRASHKIT_POWERLOSS_SHIM_BUILD)})
    if (!ec && fs::exists(p)) return p.string();
  return harness_error(fmt::format(
      "power loss: the journal shim libcrashkit_powerloss.so is not at {} nor {}; reinstall "
      "crashkit or set CRASHKIT_POWERLOSS_SHIM",
      installed.string(), CRASHKIT_POWERLOSS_SHIM_BUILD));
}

// "KEY=a:b" with `value` in front of whatever the harness's own environment has for KEY.
std::string prepend(const char* key, const std::string& value, char sep) {
  const char* old = std::getenv(key);
  return fmt::format("{}={}{}{}", key, value,
                     old != nullptr && *old != '\0' ? std::string(1, sep) : "",
                     old != nullptr ? old : "");
}

std::uint64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ULL +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

std::string summary(const powerloss::RollbackReport& r) {
  if (r.undone == 0 && r.kept == 0)
    return fmt::format("power loss: nothing to undo ({} journalled change(s) were durable)",
                       r.durable);
  std::string s = fmt::format("power loss: {} change(s) rolled back", r.undone);
  if (r.kept > 0) s += fmt::format(", {} unsynced kept", r.kept);
  s += fmt::format(", {} durable", r.durable);
  if (!r.lines.empty()) s += "; first: " + r.lines.front();
  return s;
}

}  // namespace

// A statically linked target never loads the shim: its writes would go unseen and every
// power-loss cell would pass. Refused before anything runs.
std::optional<Error> refuse_static_target(const std::string& exe) {
  std::ifstream in(exe, std::ios::binary);
  Elf64_Ehdr eh{};
  if (!in.read(reinterpret_cast<char*>(&eh), sizeof eh) ||
      std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64)
    return std::nullopt;  // a script: its interpreter is what runs
  for (int i = 0; i < eh.e_phnum; ++i) {
    Elf64_Phdr ph{};
    in.seekg(
        static_cast<std::streamoff>(eh.e_phoff + static_cast<std::uint64_t>(i) * eh.e_phentsize));
    if (!in.read(reinterpret_cast<char*>(&ph), sizeof ph)) break;
    if (ph.p_type == PT_INTERP) return std::nullopt;
  }
  return usage_error(fmt::format(
      "power loss: {} is statically linked, so the journal shim (LD_PRELOAD) cannot see its "
      "writes; power-loss cells need a dynamically linked target",
      exe));
}

// With --user the shim is copied into the run dir (which that user can reach, checked before
// anything ran): the loader silently ignores an LD_PRELOAD the target cannot read.
Result<std::string> shim_for(const std::optional<Credentials>& user, const fs::path& run_root) {
  auto shim = shim_path();
  if (!shim || !user) return shim;
  const fs::path copy = run_root / "libcrashkit_powerloss.so";
  std::error_code ec;
  if (!fs::exists(copy)) fs::copy_file(*shim, copy, ec);
  if (ec || chmod(copy.c_str(), 0755) != 0)
    return harness_error(fmt::format("power loss: cannot copy the shim to {} for --user: {}",
                                     copy.string(), ec ? ec.message() : std::strerror(errno)));
  return copy.string();
}

std::vector<std::string> CellRun::power_scope(int cycle) const {
  std::vector<std::string> out;
  for (const auto& s : spec_.powerloss_scope) {
    std::error_code ec;
    const std::string dir = placeholders(cycle).apply(s);
    auto abs = fs::weakly_canonical(dir, ec);
    out.push_back(ec ? dir : abs.string());
  }
  if (out.empty()) out.push_back(fs::weakly_canonical(own_dir().data).string());
  return out;
}

Result<std::vector<std::string>> CellRun::power_env(int cycle) {
  auto shim = shim_for(user_, run_.root);
  if (!shim) return shim.error();
  const std::string journal = journal_dir();
  std::string error;
  if (!powerloss::reset_journal_dir(journal, error)) return harness_error("power loss: " + error);
  if (user_) {  // the shim runs as the --user: its journals, sequence file and stash are its own
    for (const char* part : {"", "/seq", "/stash"})
      if (chown((journal + part).c_str(), user_->uid, user_->gid) != 0)
        return harness_error(fmt::format("power loss: chown {}{} for --user failed: {}", journal,
                                         part, std::strerror(errno)));
  }
  std::string scope;
  for (const auto& s : power_scope(cycle)) scope += (scope.empty() ? "" : ":") + s;
  return std::vector<std::string>{
      prepend("LD_PRELOAD", *shim, ':'), fmt::format("{}={}", powerloss::kDirVariable, journal),
      fmt::format("{}={}", powerloss::kScopeVariable, scope),
      // A sanitizer-built target: its runtime no longer comes first (the shim does).
      prepend("ASAN_OPTIONS", "verify_asan_link_order=0", ':')};
}

std::optional<Verdict> CellRun::cut_power(int cycle, CycleResult& cr, const Fault* fault) {
  const Fault& cut = fault != nullptr ? *fault : spec_.fault;
  if (!cut.loses_power()) return std::nullopt;
  // A target that never loaded the shim journalled nothing: a pass would mean nothing.
  if (powerloss::armed_count(journal_dir()) == 0)
    return Verdict{Outcome::harness_error,
                   "power loss: the target never loaded the journal shim (the loader ignored "
                   "LD_PRELOAD: a setuid or static program, or a shim it cannot read), so nothing "
                   "it wrote could be rolled back"};
  powerloss::RollbackOptions o;
  o.scope = power_scope(cycle);
  o.model = spec_.powerloss_model;
  o.state = cut.crash_state;
  o.seed = spec_.seed + static_cast<std::uint64_t>(cycle);
  o.cut_ns = monotonic_ns();
  auto r = powerloss::roll_back(journal_dir(), o);
  const auto path = own_dir().artifacts / fmt::format("powerloss.{}.txt", cycle);
  std::ofstream out(path);
  out << fmt::format("# {} ({} model), cycle {}\n", cut.to_string(),
                     o.model == powerloss::Model::strict ? "strict" : "ext4", cycle);
  for (const auto& l : r.lines) out << l << "\n";
  for (const auto& e : r.errors) out << "error: " << e << "\n";
  cr.powerloss = summary(r);
  say(fmt::format("cycle {}: {} (report: {})", cycle, cr.powerloss, path.string()));
  if (!out)
    return Verdict{Outcome::harness_error,
                   fmt::format("power loss: cannot write the rollback report {}", path.string())};
  if (!r.errors.empty())
    return Verdict{Outcome::harness_error,
                   fmt::format("power loss: the rollback is not exact: {} (report: {})",
                               r.errors.front(), path.string())};
  return std::nullopt;
}

}  // namespace crashkit::detail
