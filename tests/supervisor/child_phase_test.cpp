// The supervisor's per-child state machine as a table: every (phase, event) pair, for every
// worker kind and restart type, legal or not. A pair missing from kLegal must be illegal.
#include "../../supervisor/src/child_phase.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

namespace crashkit::detail {
namespace {

enum class K { any, thread, process };
enum class R { any, permanent, transient, temporary, restarted /* not temporary */ };

struct Row {
  Phase phase;
  Event event;
  K kind;
  R restart;
  Phase next;
  std::uint8_t actions;
};

constexpr std::uint8_t kPanicRestart = kRestart | kReportPanic;

// clang-format off
const std::vector<Row> kLegal = {
  {Phase::idle,      Event::start,    K::any,     R::any,       Phase::starting,  kRun},
  {Phase::idle,      Event::stop,     K::any,     R::any,       Phase::stopped,   kNone},
  {Phase::starting,  Event::entered,  K::any,     R::any,       Phase::running,   kNone},
  {Phase::starting,  Event::panicked, K::any,     R::permanent, Phase::backoff,   kPanicRestart},
  {Phase::starting,  Event::panicked, K::any,     R::transient, Phase::backoff,   kPanicRestart},
  {Phase::starting,  Event::panicked, K::any,     R::temporary, Phase::failed,    kReportPanic},
  {Phase::running,   Event::exited,   K::any,     R::permanent, Phase::backoff,   kRestart},
  {Phase::running,   Event::exited,   K::any,     R::transient, Phase::stopped,   kNone},
  {Phase::running,   Event::exited,   K::any,     R::temporary, Phase::stopped,   kNone},
  {Phase::running,   Event::panicked, K::any,     R::permanent, Phase::backoff,   kPanicRestart},
  {Phase::running,   Event::panicked, K::any,     R::transient, Phase::backoff,   kPanicRestart},
  {Phase::running,   Event::panicked, K::any,     R::temporary, Phase::failed,    kReportPanic},
  {Phase::running,   Event::stop,     K::any,     R::any,       Phase::stopping,  kRequestStop},
  {Phase::running,   Event::cycle,    K::any,     R::any,       Phase::cycling,   kRequestStop},
  {Phase::stopping,  Event::exited,   K::any,     R::any,       Phase::stopped,   kNone},
  {Phase::stopping,  Event::panicked, K::any,     R::any,       Phase::stopped,   kReportPanic},
  {Phase::stopping,  Event::stop,     K::any,     R::any,       Phase::stopping,  kNone},
  {Phase::stopping,  Event::deadline, K::thread,  R::any,       Phase::abandoned, kReportOverrun},
  {Phase::stopping,  Event::deadline, K::process, R::any,       Phase::stopping,  kKill | kReportOverrun},
  {Phase::cycling,   Event::exited,   K::any,     R::any,       Phase::backoff,   kNone},
  {Phase::cycling,   Event::panicked, K::any,     R::any,       Phase::backoff,   kReportPanic},
  {Phase::cycling,   Event::stop,     K::any,     R::any,       Phase::stopping,  kNone},
  {Phase::cycling,   Event::cycle,    K::any,     R::any,       Phase::cycling,   kNone},
  {Phase::cycling,   Event::deadline, K::thread,  R::any,       Phase::late,      kReportOverrun},
  {Phase::cycling,   Event::deadline, K::process, R::any,       Phase::cycling,   kKill | kReportOverrun},
  {Phase::abandoned, Event::exited,   K::any,     R::any,       Phase::stopped,   kNone},
  {Phase::abandoned, Event::panicked, K::any,     R::any,       Phase::stopped,   kReportPanic},
  {Phase::abandoned, Event::stop,     K::any,     R::any,       Phase::abandoned, kNone},
  {Phase::late,      Event::exited,   K::any,     R::any,       Phase::starting,  kRun},
  {Phase::late,      Event::panicked, K::any,     R::any,       Phase::starting,  kRun | kReportPanic},
  {Phase::late,      Event::stop,     K::any,     R::any,       Phase::abandoned, kNone},
  {Phase::late,      Event::cycle,    K::any,     R::any,       Phase::late,      kNone},
  {Phase::backoff,   Event::start,    K::any,     R::any,       Phase::starting,  kRun},
  {Phase::backoff,   Event::stop,     K::any,     R::any,       Phase::stopped,   kNone},
  {Phase::backoff,   Event::cycle,    K::any,     R::any,       Phase::backoff,   kNone},
  {Phase::backoff,   Event::give_up,  K::any,     R::any,       Phase::failed,    kNone},
  {Phase::stopped,   Event::cycle,    K::any,     R::restarted, Phase::backoff,   kNone},
  {Phase::stopped,   Event::cycle,    K::any,     R::temporary, Phase::stopped,   kNone},
  {Phase::stopped,   Event::stop,     K::any,     R::any,       Phase::stopped,   kNone},
  {Phase::failed,    Event::cycle,    K::any,     R::restarted, Phase::backoff,   kNone},
  {Phase::failed,    Event::cycle,    K::any,     R::temporary, Phase::failed,    kNone},
  {Phase::failed,    Event::stop,     K::any,     R::any,       Phase::failed,    kNone},
};
// clang-format on

bool matches(K k, Kind kind) {
  return k == K::any || (k == K::thread) == (kind == Kind::thread);
}

bool matches(R r, Restart restart) {
  switch (r) {
    case R::any:
      return true;
    case R::permanent:
      return restart == Restart::permanent;
    case R::transient:
      return restart == Restart::transient;
    case R::temporary:
      return restart == Restart::temporary;
    case R::restarted:
      return restart != Restart::temporary;
  }
  return false;
}

std::optional<Row> expected(Phase p, Event e, Kind kind, Restart restart) {
  std::optional<Row> found;
  for (const auto& row : kLegal)
    if (row.phase == p && row.event == e && matches(row.kind, kind) &&
        matches(row.restart, restart)) {
      EXPECT_FALSE(found) << "two table rows for " << phase_name(p) << " x " << event_name(e);
      found = row;
    }
  return found;
}

TEST(ChildPhase, EveryPhaseEventPairForEveryKindAndRestartType) {
  int legal = 0, illegal = 0;
  for (Kind kind : {Kind::thread, Kind::process})
    for (Restart restart : {Restart::permanent, Restart::transient, Restart::temporary})
      for (int p = 0; p < kPhaseCount; ++p)
        for (int e = 0; e < kEventCount; ++e) {
          const auto phase = static_cast<Phase>(p);
          const auto event = static_cast<Event>(e);
          const auto t = transition(phase, event, kind, restart);
          const auto want = expected(phase, event, kind, restart);
          const std::string where = std::string(phase_name(phase)) + " x " + event_name(event) +
                                    (kind == Kind::thread ? " (thread, " : " (process, ") +
                                    std::to_string(static_cast<int>(restart)) + ")";
          if (!want) {
            EXPECT_FALSE(t.legal) << where << " should be illegal";
            EXPECT_EQ(t.next, phase) << where << ": an illegal event changes nothing";
            EXPECT_EQ(t.actions, kNone) << where;
            ++illegal;
            continue;
          }
          EXPECT_TRUE(t.legal) << where;
          EXPECT_EQ(phase_name(t.next), phase_name(want->next)) << where;
          EXPECT_EQ(t.actions, want->actions) << where;
          ++legal;
        }
  EXPECT_EQ(legal + illegal, 2 * 3 * kPhaseCount * kEventCount);
  EXPECT_GT(legal, 0);
  EXPECT_GT(illegal, 0);
}

TEST(ChildPhase, NamesCoverEveryValue) {
  for (int p = 0; p < kPhaseCount; ++p) EXPECT_NE(phase_name(static_cast<Phase>(p)), nullptr);
  EXPECT_STREQ(phase_name(Phase::failed), "failed");
  EXPECT_STREQ(event_name(Event::give_up), "give_up");
}

// A child that is alive is never shown as stopped, one waiting to restart never as running.
TEST(ChildPhase, PublicStateOfEveryPhase) {
  using S = WorkerStatus::State;
  const S want[kPhaseCount] = {S::stopped, S::running,    S::running,    S::running, S::restarting,
                               S::stopped, S::restarting, S::restarting, S::stopped, S::failed};
  for (int p = 0; p < kPhaseCount; ++p)
    EXPECT_EQ(public_state(static_cast<Phase>(p)), want[p]) << phase_name(static_cast<Phase>(p));
}

}  // namespace
}  // namespace crashkit::detail
