#include "crashkit/harness/compiled_points.hpp"

#include <elf.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>

namespace crashkit {

Result<std::vector<PointName>> read_compiled_points(const std::filesystem::path& binary) {
  std::ifstream in(binary, std::ios::binary);
  if (!in)
    return usage_error(
        fmt::format("{}: cannot open; give the path of the daemon binary", binary.string()));
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  auto bad = [&](std::string_view why) {
    return usage_error(fmt::format("{}: not a 64-bit ELF executable ({})", binary.string(), why));
  };
  if (bytes.size() < sizeof(Elf64_Ehdr) || std::memcmp(bytes.data(), ELFMAG, SELFMAG) != 0)
    return bad("no ELF header");
  Elf64_Ehdr eh;
  std::memcpy(&eh, bytes.data(), sizeof eh);
  if (eh.e_ident[EI_CLASS] != ELFCLASS64) return bad("32-bit");
  auto section = [&](std::size_t i, Elf64_Shdr& sh) {
    std::size_t off = eh.e_shoff + i * eh.e_shentsize;
    if (off + sizeof sh > bytes.size()) return false;
    std::memcpy(&sh, bytes.data() + off, sizeof sh);
    return sh.sh_offset + sh.sh_size <= bytes.size() || sh.sh_type == SHT_NOBITS;
  };
  Elf64_Shdr strtab;
  if (eh.e_shstrndx >= eh.e_shnum || !section(eh.e_shstrndx, strtab))
    return bad("no section names");
  std::vector<PointName> out;
  for (std::size_t i = 0; i < eh.e_shnum; ++i) {
    Elf64_Shdr sh;
    if (!section(i, sh)) return bad("truncated section table");
    if (sh.sh_name >= strtab.sh_size) continue;
    const char* name = bytes.data() + strtab.sh_offset + sh.sh_name;
    if (std::strcmp(name, "crashkit_names") != 0 || sh.sh_type == SHT_NOBITS) continue;
    std::string_view data(bytes.data() + sh.sh_offset, sh.sh_size);
    while (!data.empty()) {
      auto end = data.find('\0');
      std::string_view entry = data.substr(0, end);
      if (entry.size() > 1 && (entry[0] == 'P' || entry[0] == 'F'))
        out.push_back({std::string(entry.substr(1)), entry[0]});
      data = end == std::string_view::npos ? std::string_view{} : data.substr(end + 1);
    }
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  out.erase(std::unique(out.begin(), out.end(),
                        [](const auto& a, const auto& b) { return a.name == b.name; }),
            out.end());
  return out;
}

}  // namespace crashkit
