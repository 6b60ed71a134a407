// crashkit::harness, the front door: include this one header for the whole public API. It
// starts a storage daemon with a private NOTIFY_SOCKET, waits for READY=1, drives a workload,
// kills it (a signal or a named crash point), restarts it and runs checkers (a "cell"); a
// matrix runs many cells from a YAML spec and reports them. Map: docs/architecture.md.
//
//   #include <crashkit/harness.hpp>
//   auto spec = crashkit::load_matrix_spec("matrix.yaml");         // Result<MatrixSpec>
//   auto plan = crashkit::expand_matrix(*spec, {.seed = 7});       // Result<MatrixPlan>
//   auto results = crashkit::run_matrix(plan->cells, {.jobs = 2});
//   fmt::print("{}", crashkit::matrix_summary(results, *plan, {}));
//   return crashkit::matrix_exit_code(results);
#pragma once

// Values used everywhere: Result/Error, Duration, Outcome and the CLI exit codes.
#include "crashkit/harness/duration.hpp"
#include "crashkit/harness/outcome.hpp"
#include "crashkit/harness/result.hpp"

// process: children, the daemon under test, how they ended, their output, whose they are.
#include "crashkit/harness/child.hpp"
#include "crashkit/harness/clean_stop.hpp"
#include "crashkit/harness/containment.hpp"
#include "crashkit/harness/credentials.hpp"
#include "crashkit/harness/daemon.hpp"
#include "crashkit/harness/exit_status.hpp"
#include "crashkit/harness/output_capture.hpp"
#include "crashkit/harness/resource_limit.hpp"
#include "crashkit/harness/sentinel.hpp"

// notify: the sd_notify receiver the daemon reports READY=1 (and crash-point fires) to.
#include "crashkit/harness/notify_message.hpp"
#include "crashkit/harness/notify_receiver.hpp"

// cell: one kill-and-verify run, its placeholders, and the crash points a binary carries.
#include "crashkit/harness/cell.hpp"
#include "crashkit/harness/compiled_points.hpp"
#include "crashkit/harness/disk_full.hpp"
#include "crashkit/harness/placeholders.hpp"
#include "crashkit/harness/unit_file.hpp"
#include "crashkit/harness/ledger.hpp"

// matrix and reports: a YAML spec expanded into cells, run in parallel, reported.
#include "crashkit/harness/baseline.hpp"
#include "crashkit/harness/matrix.hpp"
#include "crashkit/harness/report.hpp"
