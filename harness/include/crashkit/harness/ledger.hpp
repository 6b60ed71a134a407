// The acknowledged-write oracle for any daemon with a command-line client (DESIGN.md section 3).
// The workload puts unique values through the client, writing "pending PUT KEY VALUE" to the
// ledger before each put and "acked PUT KEY VALUE" once the client exited 0. The verifier reads
// the keys back: an acked key must hold its last acked value or a later pending one; a key with
// only pending puts may hold one of them or nothing; anything else is a finding (absent: lost; an
// older acked value: a lost update; a value never written: a phantom).
//
//   LedgerWorkload w{.ledger = "ledger", .put = "redis-cli set {key} {value}", .count = 100};
//   auto done = run_ledger_workload(w);  // Result<LedgerWorkloadResult>; .failure if a put failed
//   LedgerCheck c{.ledger = "ledger", .get = "redis-cli get {key}"};
//   auto v = verify_ledger(c);           // Result<LedgerVerdict>; v->holds(), v->summary()
//
// Commands run with /bin/sh -c; {key} and {value} are replaced (keys and values are [A-Za-z0-9_.-]
// only, so they need no quoting). An error (Result) means the oracle could not judge: an unreadable
// ledger, a get or dump command that failed. Not thread-safe per call; calls are independent.
#pragma once

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "crashkit/harness/result.hpp"

namespace crashkit {

struct LedgerWorkload {
  std::filesystem::path ledger;
  std::string put;      // e.g. "redis-cli -s /run/r.sock set {key} {value}"
  int count = 100;      // puts per client
  int keys = 0;         // 0: every put a new key (c0_1, c0_2, ...); K: each client cycles
                        // through its own K keys (c0_k0 ... c0_k{K-1}), overwriting them
  int concurrency = 1;  // clients, each putting in sequence (no two clients share a key)
};

struct LedgerWorkloadResult {
  int acked = 0;
  // The first put that failed (its key, how the client ended, its last stderr line); the
  // workload stops there, as when the daemon died mid-run: that put stays pending.
  std::optional<std::string> failure;
};

// Runs the clients to the end or to the first failed put. Errors: the ledger cannot be written.
Result<LedgerWorkloadResult> run_ledger_workload(const LedgerWorkload& w);

struct LedgerCheck {
  std::filesystem::path ledger;
  std::string get;   // one call per key, prints the value (nothing: absent); or
  std::string dump;  // one call, prints "KEY VALUE" lines (keys not in the ledger are ignored)
  // A put never acknowledged may have landed late, after later acknowledged puts of its key
  // (a timed-out client, a proposal that commits after a partition heals): its value is then
  // acceptable, not stale. Off by default: after a crash, a pending put is ordered before the
  // puts that follow it, and an old value then is a lost update.
  bool pending_may_land_late = false;
};

struct LedgerFinding {
  enum class Kind { lost, stale, phantom };
  Kind kind;
  std::string key, expected, found;  // found empty: absent
};

struct LedgerVerdict {
  int acked_keys = 0, pending_keys = 0;
  std::vector<LedgerFinding> findings;
  bool holds() const { return findings.empty(); }
  // "held: 150 acked keys, 1 pending" or "lost 3 of 150 acked (c0_148, c0_149, c0_150); ...".
  std::string summary() const;
  // One line per finding: "c0_148: acked v..-0-148, found nothing".
  std::vector<std::string> details() const;
};

Result<LedgerVerdict> verify_ledger(const LedgerCheck& c);

// The crashkit binary, which runs `crashkit workload` / `crashkit verify` as a cell's commands
// (the matrix spec's `workload: {put: ...}` and `{verify: ...}`): $CRASHKIT_CLI, else this
// process if it is crashkit, else the installed one, else this build tree's.
Result<std::string> crashkit_cli_path();

}  // namespace crashkit
