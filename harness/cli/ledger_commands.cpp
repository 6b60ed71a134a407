// `crashkit workload` and `crashkit verify`: the acknowledged-write oracle as tools, for any
// daemon with a command-line client (crashkit/harness/ledger.hpp).
#include <fmt/format.h>

#include <memory>

#include "crashkit/harness/ledger.hpp"
#include "crashkit/harness/outcome.hpp"
#include "run_command.hpp"

namespace crashkit::cli {
namespace {

int fail(const Error& e) {
  fmt::print(stderr, "crashkit: {}\n", e.message);
  return e.kind == ErrorKind::usage ? exit_code::usage : exit_code::harness_error;
}

}  // namespace

std::function<int()> add_workload_command(CLI::App& app) {
  auto w = std::make_shared<LedgerWorkload>();
  CLI::App* cmd = app.add_subcommand(
      "workload",
      "Put unique values through a client command, recording each in a ledger: pending before "
      "the put, acked once the command exited 0.");
  cmd->footer(
      "Stops at the first put that fails (the daemon died mid-run: that put stays pending) and "
      "exits 1.\nExample: crashkit run --workload \"crashkit workload --ledger {ledger} --count "
      "100 --put 'redis-cli -s {run_dir}/r.sock set {key} {value}'\" ...");
  cmd->add_option("--ledger", w->ledger, "the ledger file (appended to)")->required();
  cmd->add_option("--put", w->put, "shell command storing {value} under {key}")->required();
  cmd->add_option("--count", w->count, "puts per client")
      ->capture_default_str()
      ->check(at_least_one());
  cmd->add_option("--keys", w->keys,
                  "0: a new key per put; K: each client overwrites its own K keys")
      ->capture_default_str()
      ->check(CLI::Range(0, 1000000));
  cmd->add_option("--concurrency", w->concurrency, "clients putting in parallel")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  return [w] {
    auto r = run_ledger_workload(*w);
    if (!r) return fail(r.error());
    if (r->failure) {
      fmt::print(stderr,
                 "crashkit workload: {}; stopped after {} acked put(s), that one stays "
                 "pending\n",
                 *r->failure, r->acked);
      return exit_code::finding;
    }
    fmt::print("crashkit workload: {} put(s) acked\n", r->acked);
    return exit_code::ok;
  };
}

std::function<int()> add_verify_command(CLI::App& app) {
  auto c = std::make_shared<LedgerCheck>();
  CLI::App* cmd = app.add_subcommand(
      "verify",
      "Read back every key of a ledger and check that nothing acknowledged was lost: exit 0 "
      "holds, 1 lost/stale/phantom values, 3 could not judge.");
  cmd->add_option("--ledger", c->ledger, "the ledger the workload wrote")->required();
  cmd->add_option("--get", c->get, "shell command printing the value of {key} (nothing: absent)");
  cmd->add_option("--dump", c->dump, "shell command printing 'KEY VALUE' lines, called once");
  cmd->add_flag("--pending-may-land-late", c->pending_may_land_late,
                "a put never acknowledged may have taken effect after later acknowledged puts of "
                "its key (timeouts, partitions): its value is not stale");
  return [c] {
    auto v = verify_ledger(*c);
    if (!v) return fail(v.error());
    for (const auto& line : v->details()) fmt::print("{}\n", line);
    // The summary comes last: a check's last line is what `crashkit run` quotes.
    fmt::print("{}\n", v->summary());
    return v->holds() ? exit_code::ok : exit_code::finding;
  };
}

}  // namespace crashkit::cli
