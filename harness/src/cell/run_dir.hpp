// Internal (not installed): RunDir, the directory of one kill-and-verify run. data/ persists across
// the daemon's restarts (it is what crashes must not corrupt), scratch/ is free for the workload,
// artifacts/ keeps captured output, and `ledger` is where the workload records intent.
//
//   auto run = RunDir::create("");           // fresh mkdtemp dir under $TMPDIR
//   auto run = RunDir::create("/tmp/mine");  // given dir, created if missing, data/ kept
//   run->remove_unless_kept(keep);           // also the parents create() made, if empty
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>

#include "crashkit/harness/result.hpp"

namespace crashkit {

struct RunDir {
  std::filesystem::path root;
  std::filesystem::path data;
  std::filesystem::path scratch;
  std::filesystem::path artifacts;
  std::filesystem::path ledger;
  std::filesystem::path notify_socket;
  bool created_by_us = false;  // only a dir we made is ever removed
  // The outermost directory create() made for `root` (root itself, or the first of its
  // ancestors that did not exist): removing the run dir also removes the parents up to it.
  std::filesystem::path created_from;

  // `dir` empty: a new private directory under $TMPDIR (or /tmp). Otherwise the given
  // directory, created if missing; an existing data/ is kept (a pre-seeded database).
  // `owner`: chown the tree to this uid/gid (for --user). Errors name the path and the fix.
  static Result<RunDir> create(const std::filesystem::path& dir,
                               std::optional<std::pair<uid_t, gid_t>> owner = std::nullopt);

  // Removes the tree if we created it and `keep` is false, then the parents create() made for
  // it, each only while it is empty (pre-existing directories are never touched). Never throws.
  void remove_unless_kept(bool keep) const;

 private:
  // data/, scratch/, artifacts/ under root, writable, owned by `owner` when given.
  std::optional<Error> populate(std::optional<std::pair<uid_t, gid_t>> owner);
};

}  // namespace crashkit
