// Reading the power-loss journals (the harness side) and the checksum both sides use.
#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>

#include "crashkit/powerloss_journal.hpp"

namespace crashkit::powerloss {
namespace {

constexpr std::array<std::uint32_t, 256> make_table() {
  std::array<std::uint32_t, 256> t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) != 0 ? 0x82F63B78u ^ (c >> 1) : c >> 1;
    t[i] = c;
  }
  return t;
}
constexpr auto kTable = make_table();

void decode_paths(Record& r) {
  std::string_view p(r.bytes);
  std::string* parts[] = {&r.dir, &r.name, &r.dir2, &r.name2};
  for (auto* part : parts) {
    auto nul = p.find('\0');
    if (nul == std::string_view::npos) break;
    *part = std::string(p.substr(0, nul));
    p.remove_prefix(nul + 1);
  }
}

bool is_entry_op(Op op) {
  return op == Op::create || op == Op::unlink || op == Op::rename || op == Op::link ||
         op == Op::mkdir || op == Op::rmdir;
}

// Reads one journal's valid records; stops at the first zero or torn record.
void read_one(const std::string& path, JournalDir& out) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    out.errors.push_back(path + ": " + std::strerror(errno));
    return;
  }
  struct stat st;
  fstat(fd, &st);
  const auto size = static_cast<std::size_t>(st.st_size);
  void* p = size > 0 ? mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0) : MAP_FAILED;
  close(fd);
  if (p == MAP_FAILED) return;
  const char* base = static_cast<const char*>(p);
  std::size_t at = 64;
  while (at + sizeof(RecordHeader) <= size) {
    RecordHeader h;
    std::memcpy(&h, base + at, sizeof h);
    if (h.magic != kRecordMagic) break;  // the end (zeros), or a record never finished
    if (h.length < sizeof h || at + h.length > size || h.payload > h.length - sizeof h) {
      ++out.torn;
      break;
    }
    RecordHeader z = h;
    z.crc = 0;
    std::uint32_t crc = crc32c(&z, sizeof z);
    crc = crc32c(base + at + sizeof h, h.length - sizeof h, crc);
    if (crc != h.crc) {
      ++out.torn;
      break;
    }
    Record r{h, std::string(base + at + sizeof h, h.payload), {}, {}, {}, {}};
    if (is_entry_op(static_cast<Op>(h.op))) decode_paths(r);
    out.records.push_back(std::move(r));
    at += h.length;
  }
  munmap(p, size);
}

#if defined(__x86_64__)
// SSE4.2's crc32 instruction computes CRC-32C: 8 bytes a cycle or so, against a table lookup
// per byte (a 4 KiB before-image: ~0.3 us instead of ~13 us).
__attribute__((target("sse4.2"))) std::uint32_t crc32c_hw(const unsigned char* b, std::size_t n,
                                                          std::uint32_t crc) {
  std::uint64_t c = crc;
  for (; n >= 8; n -= 8, b += 8) {
    std::uint64_t v;
    std::memcpy(&v, b, 8);
    c = __builtin_ia32_crc32di(c, v);
  }
  for (; n > 0; --n, ++b) c = __builtin_ia32_crc32qi(static_cast<std::uint32_t>(c), *b);
  return static_cast<std::uint32_t>(c);
}
#endif

}  // namespace

std::uint32_t crc32c(const void* data, std::size_t n, std::uint32_t crc) {
  const auto* b = static_cast<const unsigned char*>(data);
  crc = ~crc;
#if defined(__x86_64__)
  static const bool hw = __builtin_cpu_supports("sse4.2");
  if (hw) return ~crc32c_hw(b, n, crc);
#endif
  for (std::size_t i = 0; i < n; ++i) crc = kTable[(crc ^ b[i]) & 0xff] ^ (crc >> 8);
  return ~crc;
}

std::uint64_t armed_count(const std::string& journal_dir) {
  std::uint64_t words[2] = {0, 0};
  int fd = open((journal_dir + "/" + std::string(kSeqFile)).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  const bool ok = pread(fd, words, sizeof words, 0) == static_cast<ssize_t>(sizeof words);
  close(fd);
  return ok ? words[1] : 0;
}

JournalDir read_journal_dir(const std::string& dir) {
  JournalDir out;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) {
    out.errors.push_back(dir + ": " + std::strerror(errno));
    return out;
  }
  while (dirent* e = readdir(d))
    if (std::string_view(e->d_name).starts_with(kJournalPrefix))
      read_one(dir + "/" + e->d_name, out);
  closedir(d);
  std::sort(out.records.begin(), out.records.end(),
            [](const Record& a, const Record& b) { return a.h.seq < b.h.seq; });
  return out;
}

}  // namespace crashkit::powerloss
