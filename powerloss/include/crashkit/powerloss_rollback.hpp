// Rolling back a power loss: after the target's whole process tree was SIGKILLed, undo every
// change its journals show was not durable under the chosen model, before anything restarts.
//
//   auto r = crashkit::powerloss::roll_back(run_dir + "/powerloss",
//                                           {.scope = {data_dir}, .cut_ns = cut});
//   for (auto& line : r.lines) puts(line.c_str());  // "wal bytes 0-4095 ... rolled back"
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace crashkit::powerloss {

// strict: POSIX; a created, renamed or linked entry is durable once its directory was
// fsynced (a rename across directories: both). ext4: any fsync commits the file system's
// journal and with it every earlier directory change there, as ext4 and XFS do in practice
// (a file's own fsync thus also keeps its new entry); file data still needs its own fsync.
enum class Model { strict, ext4 };
// drop: every unsynced change is lost. subset: each unsynced write independently kept or lost.
// torn: each unsynced write keeps a random subset of its 512-byte sectors.
enum class CrashState { drop, subset, torn };

struct RollbackOptions {
  std::vector<std::string> scope;  // absolute directories the journals cover
  Model model = Model::strict;
  CrashState state = CrashState::drop;
  std::uint64_t seed = 1;    // subset / torn
  std::uint64_t cut_ns = 0;  // CLOCK_MONOTONIC of the cut, for "written 3.2 ms before the cut"
};

struct RollbackReport {
  std::vector<std::string> lines;   // one per undone (or kept, for subset/torn) change
  std::size_t undone = 0;           // changes rolled back
  std::size_t kept = 0;             // unsynced changes kept by subset/torn
  std::size_t durable = 0;          // journalled changes that were durable
  std::size_t torn_records = 0;     // journal records a dying process left unfinished
  std::vector<std::string> errors;  // what could not be undone exactly (then not a clean cut)
};

RollbackReport roll_back(const std::string& journal_dir, const RollbackOptions& options);

// Prepares an empty journal dir (the sequence file and the stash) for the next start.
bool reset_journal_dir(const std::string& journal_dir, std::string& error);

}  // namespace crashkit::powerloss
