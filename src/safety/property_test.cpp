// Random input sequences (fixed seeds, replayable) against the supervisor's invariants: every
// dangerous entry turns the inverter off in the same call, SAFE only after the contactors open and
// no later than the maximum delay, SAFE left only by an accepted reset with no dangerous cause,
// NORMAL/WARNING always match the active causes, the main contactor closes only on a DC-link match.
#include <cmath>
#include <random>

#include "safety/test_support.h"

namespace cellguard::safety {
namespace {

using namespace testing;

// How often the interesting paths ran over all seeds, so the test shows it exercised them.
struct Coverage {
  int safe = 0, reset_accepted = 0, reset_refused = 0, precharge_complete = 0, lockout = 0;
  int contactors_current = 0, contactors_emergency = 0, cooling_on = 0, nudges = 0;
};

class Checker {
 public:
  Checker(Rig& rig, Coverage& coverage) : rig_(rig), coverage_(coverage) {}

  void check(const std::vector<Decision>& d, bool was_reset) {
    Supervisor& s = rig_.supervisor;
    for (std::size_t i = 0; i < d.size(); ++i) {
      const Decision& x = d[i];
      count(x);
      ASSERT_GE(x.time_ns, last_time_ns_);
      if (x.kind == DecisionKind::state_changed) {
        ASSERT_EQ(x.from, state_);
        if (x.to == State::dangerous) {
          ASSERT_LT(i + 1, d.size());
          ASSERT_EQ(d[i + 1].kind, DecisionKind::inverter_off);  // at once
          dangerous_since_ns_ = x.time_ns;
        }
        if (x.to == State::safe) {
          ASSERT_EQ(state_, State::dangerous);
          ASSERT_TRUE(contactors_opened_);
          ASSERT_LE(x.time_ns - dangerous_since_ns_, test_config().contactor_max_delay_ns);
        }
        if (x.from == State::safe) {
          ASSERT_TRUE(was_reset);
        }
        state_ = x.to;
      }
      if (x.kind == DecisionKind::contactors_open) {
        ASSERT_EQ(state_, State::dangerous);
        contactors_opened_ = true;
      }
      if (x.kind == DecisionKind::relay_set && x.role == RelayRole::main_positive && x.closed) {
        ASSERT_TRUE(state_ == State::normal || state_ == State::warning);
        ASSERT_LE(std::fabs(x.reason.measured - x.reason.threshold),
                  test_config().precharge.match_tolerance_v);
      }
      if (x.kind == DecisionKind::reset_accepted && state_ != State::safe) {
        for (const Reason& r : s.active_causes()) {
          ASSERT_NE(r.level, Level::dangerous)
              << "reset accepted with " << s.describe(r, ClockPair{}) << " at " << x.time_ns.ns() << " ns"
              << " (call of " << d.size() << " decisions, first " << to_string(d[0].kind) << ")";
        }
      }
    }
    if (state_ != State::dangerous) contactors_opened_ = false;
    ASSERT_EQ(s.state(), state_);
    bool any_dangerous = false;
    bool any_warning = false;
    for (const Reason& r : s.active_causes()) {
      any_dangerous = any_dangerous || r.level == Level::dangerous;
      any_warning = any_warning || r.level == Level::warning;
    }
    if (state_ == State::normal) {
      ASSERT_FALSE(any_dangerous || any_warning);
    }
    if (state_ == State::warning) {
      ASSERT_TRUE(any_warning && !any_dangerous);
    }
    if (!d.empty()) last_time_ns_ = d.back().time_ns;
  }

 private:
  void count(const Decision& x) {
    switch (x.kind) {
      case DecisionKind::state_changed:
        coverage_.safe += x.to == State::safe;
        break;
      case DecisionKind::reset_accepted:
        ++coverage_.reset_accepted;
        break;
      case DecisionKind::reset_refused:
        ++coverage_.reset_refused;
        break;
      case DecisionKind::precharge_complete:
        ++coverage_.precharge_complete;
        break;
      case DecisionKind::precharge_lockout:
        ++coverage_.lockout;
        break;
      case DecisionKind::contactors_open:
        ++(x.emergency ? coverage_.contactors_emergency : coverage_.contactors_current);
        break;
      case DecisionKind::cooling_on:
        ++coverage_.cooling_on;
        break;
      case DecisionKind::inverter_nudge_charge:
      case DecisionKind::inverter_nudge_discharge:
        ++coverage_.nudges;
        break;
      default:
        break;
    }
  }

  Rig& rig_;
  Coverage& coverage_;
  State state_ = State::normal;
  MonoTime dangerous_since_ns_;
  MonoTime last_time_ns_;
  bool contactors_opened_ = false;
};

void run_random_sequence(std::uint64_t seed, Coverage& coverage) {
  SupervisorConfig c = test_config();
  c.rule(Quantity::cell_voltage).warning_debounce_ns = 200ms;
  c.rule(Quantity::module_voltage).dangerous_debounce_ns = 50ms;
  c.board_expected = true;
  c.precharge.timeout_ns = 300ms;  // short, so lockouts happen between the random trips
  c.precharge.retry_delay_ns = 100ms;
  c.precharge.max_attempts = 2;
  Rig rig = make_rig(c);
  Supervisor& s = rig.supervisor;
  Checker checker(rig, coverage);
  std::mt19937_64 random(seed);
  auto pick = [&](int n) { return static_cast<int>(random() % static_cast<std::uint64_t>(n)); };
  auto uniform = [&](double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(random); };
  MonoTime t;
  for (int step = 0; step < 3000; ++step) {
    t += std::chrono::milliseconds(pick(40));
    while (s.next_deadline_ns() <= t) {  // the edge's timer
      const MonoTime due = s.next_deadline_ns();
      checker.check(copy(s.tick(due)), false);
      if (::testing::Test::HasFatalFailure()) return;
    }
    std::vector<Decision> d;
    bool reset = false;
    switch (pick(12)) {
      case 0:
        d = rig.sample(rig.cells[static_cast<std::size_t>(pick(14))], t, uniform(2.6, 4.3));
        break;
      case 1:
        d = rig.sample(rig.module_voltage, t, uniform(32, 50));
        break;
      case 2:
        d = rig.sample(rig.max_temperature, t, uniform(20, 55));
        break;
      case 3:
        d = rig.sample(rig.battery_voltage, t, uniform(260, 395));
        break;
      case 4:
        d = rig.sample(rig.dc_link_voltage, t, uniform(0, 395));
        break;
      case 5:
        d = rig.sample(rig.pack_current, t, uniform(-60, 60));
        break;
      case 6:
        d = copy(s.on_module_pdo(1, t));
        break;
      case 7:
        d = copy(s.on_sync_sent(t));
        break;
      case 8:
        d = copy(s.on_board_line_valid(t));
        break;
      case 9:
        d = copy(s.on_inverter_link(pick(4) != 0, t));
        break;
      case 10:
        d = copy(s.on_operator_reset(t));
        reset = true;
        break;
      default:
        d = pick(8) == 0 ? copy(s.on_insulation_fault(pick(2) == 0, t)) : copy(s.on_start_request(t));
        break;
    }
    checker.check(d, reset);
    if (::testing::Test::HasFatalFailure()) return;
  }
}

TEST(Properties, RandomInputSequencesKeepEveryInvariant) {
  Coverage coverage;
  for (std::uint64_t seed = 1; seed <= 200; ++seed) {
    SCOPED_TRACE(seed);
    run_random_sequence(seed, coverage);
    if (HasFatalFailure()) return;
  }
  EXPECT_GT(coverage.safe, 0);
  EXPECT_GT(coverage.reset_accepted, 0);
  EXPECT_GT(coverage.reset_refused, 0);
  EXPECT_GT(coverage.precharge_complete, 0);
  EXPECT_GT(coverage.lockout, 0);
  EXPECT_GT(coverage.contactors_current, 0);
  EXPECT_GT(coverage.contactors_emergency, 0);
  EXPECT_GT(coverage.cooling_on, 0);
  EXPECT_GT(coverage.nudges, 0);
  RecordProperty("safe", coverage.safe);
  RecordProperty("precharge_complete", coverage.precharge_complete);
}

}  // namespace
}  // namespace cellguard::safety
