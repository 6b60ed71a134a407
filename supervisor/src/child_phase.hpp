// The supervisor's per-child state machine: one enum of phases and one pure transition
// function. Whoever observes an event (a worker's host thread, or the supervisor's loop
// thread) applies it under the supervisor's mutex and then performs the actions it returns.
// Internal to the supervisor; tested as a table in tests/supervisor/child_phase_test.cpp.
//
//   auto t = transition(Phase::running, Event::panicked, Kind::thread, Restart::permanent);
//   // t.next == Phase::backoff, t.actions == kRestart | kReportPanic
#pragma once

#include <cstdint>

#include "crashkit/supervisor.hpp"

namespace crashkit::detail {

enum class Phase : std::uint8_t {
  idle,       // added, never started
  starting,   // a start was decided; the worker is not running yet
  running,    // the worker function runs, or the worker process is alive
  stopping,   // asked to stop for good; waiting for it to end (stop deadline armed)
  cycling,    // asked to stop for its group's restart; started with the group once it ended
  abandoned,  // a thread that overran its stop deadline (threads cannot be killed); ends stopped
  late,       // a thread that overran a group restart; started again as soon as it ends
  backoff,    // ended; started again when its restart time comes (alone or with its group)
  stopped,    // ended and stays down: normal end not restarted, or stopped
  failed,     // panicked and stays down: temporary child, or the supervisor gave up
};
inline constexpr int kPhaseCount = 10;

enum class Event : std::uint8_t {
  start,     // the supervisor starts it: first start, after its backoff, or with its group
  entered,   // it runs: its host thread calls the function / posix_spawn succeeded
  exited,    // it ended normally: returned, exit 0, or SIGTERM after a stop request
  panicked,  // it threw, died by a signal or a non-zero exit, or could not be spawned
  stop,      // the supervisor stops it for good (shutdown)
  cycle,     // the supervisor stops it to restart its group (one_for_all, rest_for_one)
  deadline,  // its stop deadline (shutdown_timeout) passed
  give_up,   // restart intensity exceeded while it waited to restart
};
inline constexpr int kEventCount = 8;

enum class Kind : std::uint8_t { thread, process };

// What the caller must do after the transition, as bits.
enum Action : std::uint8_t {
  kNone = 0,
  kRun = 1 << 0,            // run the worker: wake its host thread, or spawn the process
  kRequestStop = 1 << 1,    // request_stop() / SIGTERM, and arm the stop deadline
  kKill = 1 << 2,           // SIGKILL the process (after its deadline)
  kRestart = 1 << 3,        // it asks to be restarted: apply intensity, backoff and strategy
  kReportPanic = 1 << 4,    // log the panic through the supervisor's log hook
  kReportOverrun = 1 << 5,  // log that it did not stop within shutdown_timeout
};

struct Transition {
  Phase next;
  std::uint8_t actions = kNone;
  bool legal = true;  // false: the event cannot happen in this phase (a bug); nothing changes
};

// Pure: no clock, no lock, no I/O.
Transition transition(Phase phase, Event event, Kind kind, Restart restart);

const char* phase_name(Phase p);
const char* event_name(Event e);
// The public, coarser view (WorkerStatus::State) of a phase.
WorkerStatus::State public_state(Phase p);

}  // namespace crashkit::detail
