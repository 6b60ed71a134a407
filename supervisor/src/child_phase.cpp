// The transition table of one supervised child. OTP's rules, written down: a permanent child
// is restarted whatever its end, a transient one only after a panic, a temporary one never;
// a child stopped for its group's restart comes back with the group; a stop waits for the end
// (a process is SIGKILLed at its deadline, a thread is abandoned: it cannot be killed).
#include "child_phase.hpp"

namespace crashkit::detail {
namespace {

constexpr Transition illegal(Phase p) {
  return {p, kNone, false};
}

// A worker that was running (or failed to start) ended on its own.
Transition ended(Event e, Restart restart) {
  const bool panic = e == Event::panicked;
  const std::uint8_t report = panic ? kReportPanic : kNone;
  const bool again = restart == Restart::permanent || (restart == Restart::transient && panic);
  if (again) return {Phase::backoff, static_cast<std::uint8_t>(kRestart | report)};
  return {panic ? Phase::failed : Phase::stopped, report};
}

// An end we asked for: not a reason to restart, but a panic on the way out is still reported.
std::uint8_t report_if_panic(Event e) {
  return e == Event::panicked ? kReportPanic : kNone;
}

Transition on_deadline(Phase waiting, Kind kind) {
  if (kind == Kind::process)
    return {waiting, static_cast<std::uint8_t>(kKill | kReportOverrun)};  // the end follows
  return {waiting == Phase::stopping ? Phase::abandoned : Phase::late, kReportOverrun};
}

}  // namespace

Transition transition(Phase p, Event e, Kind kind, Restart restart) {
  const bool temporary = restart == Restart::temporary;
  switch (p) {
    case Phase::idle:
      if (e == Event::start) return {Phase::starting, kRun};
      if (e == Event::stop) return {Phase::stopped};
      return illegal(p);
    case Phase::starting:
      if (e == Event::entered) return {Phase::running};
      if (e == Event::panicked) return ended(e, restart);  // could not be spawned
      return illegal(p);
    case Phase::running:
      if (e == Event::exited || e == Event::panicked) return ended(e, restart);
      if (e == Event::stop) return {Phase::stopping, kRequestStop};
      if (e == Event::cycle) return {Phase::cycling, kRequestStop};
      return illegal(p);
    case Phase::stopping:
      if (e == Event::exited || e == Event::panicked) return {Phase::stopped, report_if_panic(e)};
      if (e == Event::deadline) return on_deadline(p, kind);
      if (e == Event::stop) return {p};  // already on its way
      return illegal(p);
    case Phase::cycling:
      if (e == Event::exited || e == Event::panicked) return {Phase::backoff, report_if_panic(e)};
      if (e == Event::deadline) return on_deadline(p, kind);
      if (e == Event::stop) return {Phase::stopping};  // shutdown overtakes the group restart
      if (e == Event::cycle) return {p};
      return illegal(p);
    case Phase::abandoned:
      if (e == Event::exited || e == Event::panicked) return {Phase::stopped, report_if_panic(e)};
      if (e == Event::stop) return {p};
      return illegal(p);
    case Phase::late:
      if (e == Event::exited || e == Event::panicked)
        return {Phase::starting, static_cast<std::uint8_t>(kRun | report_if_panic(e))};
      if (e == Event::stop) return {Phase::abandoned};
      if (e == Event::cycle) return {p};
      return illegal(p);
    case Phase::backoff:
      if (e == Event::start) return {Phase::starting, kRun};
      if (e == Event::stop) return {Phase::stopped};
      if (e == Event::cycle) return {p};
      if (e == Event::give_up) return {Phase::failed};
      return illegal(p);
    case Phase::stopped:
    case Phase::failed:
      // OTP restarts every non-temporary sibling of a group, ended ones included.
      if (e == Event::cycle) return temporary ? Transition{p} : Transition{Phase::backoff};
      if (e == Event::stop) return {p};
      return illegal(p);
  }
  return illegal(p);
}

const char* phase_name(Phase p) {
  constexpr const char* kNames[] = {"idle",      "starting", "running", "stopping", "cycling",
                                    "abandoned", "late",     "backoff", "stopped",  "failed"};
  return kNames[static_cast<int>(p)];
}

const char* event_name(Event e) {
  constexpr const char* kNames[] = {"start", "entered", "exited",   "panicked",
                                    "stop",  "cycle",   "deadline", "give_up"};
  return kNames[static_cast<int>(e)];
}

WorkerStatus::State public_state(Phase p) {
  using S = WorkerStatus::State;
  switch (p) {
    case Phase::starting:
    case Phase::running:
    case Phase::stopping:
      return S::running;
    case Phase::cycling:
    case Phase::late:
    case Phase::backoff:
      return S::restarting;
    case Phase::failed:
      return S::failed;
    case Phase::idle:
    case Phase::abandoned:
    case Phase::stopped:
      return S::stopped;
  }
  return S::stopped;
}

}  // namespace crashkit::detail
