// Where the crashkit binary is, for cells that run `crashkit workload` and `crashkit verify`.
#include <fmt/format.h>

#include <cstdlib>
#include <filesystem>

#include "crashkit/harness/ledger.hpp"

namespace crashkit {

Result<std::string> crashkit_cli_path() {
  namespace fs = std::filesystem;
  if (const char* env = std::getenv("CRASHKIT_CLI"); env != nullptr && *env != '\0')
    return std::string(env);
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (!ec && self.filename() == "crashkit") return self.string();
  for (const fs::path& p :
       {fs::path(CRASHKIT_INSTALL_BINDIR) / "crashkit", fs::path(CRASHKIT_CLI_BUILD)})
    if (fs::is_regular_file(p, ec)) return p.string();
  return usage_error(fmt::format(
      "the crashkit binary (for workload: {{put: ...}} and {{verify: ...}}) is not at {}/crashkit "
      "nor {}; install crashkit or set CRASHKIT_CLI to its path",
      CRASHKIT_INSTALL_BINDIR, CRASHKIT_CLI_BUILD));
}

}  // namespace crashkit
