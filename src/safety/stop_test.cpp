// Issue 13 item 3: every stop (SIGTERM, SIGINT, `edge stop`, a configuration error at reload) runs
// the trip's sequence: inverter off at once, contactors open once |I| is below the threshold or after
// the maximum delay, and the caller may leave only then.
#include "safety/test_support.h"

namespace cellguard::safety {
namespace {

using namespace testing;

// Running: precharged, main contactors closed, a schedule current flowing.
Rig rig_running(double current_a) {
  SupervisorConfig c = test_config();
  c.dangerous_silence_ns = 3600s;
  c.dangerous_sync_cycles = 1000;
  Rig rig = make_rig(c);
  rig.supervisor.on_module_pdo(1, ms(0));
  rig.sample(rig.battery_voltage, ms(0), 370);
  rig.sample(rig.dc_link_voltage, ms(0), 0);
  rig.supervisor.on_start_request(ms(10));
  rig.sample(rig.dc_link_voltage, ms(500), 368);
  EXPECT_TRUE(rig.supervisor.status().contactors_closed);
  rig.sample(rig.pack_current, ms(1000), current_a);
  return rig;
}

TEST(Stop, UnderLoadTheInverterGoesOffAtOnceAndTheContactorsOpenOnlyOnceTheCurrentIsLow) {
  Rig rig = rig_running(-20);
  Supervisor& s = rig.supervisor;
  auto d = copy(s.on_stop_request(StopOrigin::terminate_signal, ms(2000)));
  ASSERT_EQ(kinds(d), (std::vector<DecisionKind>{DecisionKind::state_changed, DecisionKind::inverter_off}));
  EXPECT_EQ(d[0].to, State::dangerous);
  EXPECT_EQ(d[0].reason.rule, RuleKind::stop_request);
  EXPECT_EQ(d[0].reason.detail, static_cast<std::uint8_t>(StopOrigin::terminate_signal));
  EXPECT_EQ(d[1].time_ns, ms(2000));
  EXPECT_FALSE(s.stop_complete());
  EXPECT_TRUE(s.stop_requested());
  // The inverter ramps down: 20 A, 10 A, still nothing opens ...
  EXPECT_TRUE(rig.sample(rig.pack_current, ms(2050), -10).empty());
  EXPECT_TRUE(rig.sample(rig.pack_current, ms(2100), -5).empty());
  EXPECT_EQ(s.next_deadline_ns(), ms(2000) + test_config().contactor_max_delay_ns);
  // ... below 5 A: open, then SAFE, and the stop is complete.
  d = rig.sample(rig.pack_current, ms(2150), -0.4);
  ASSERT_EQ(kinds(d),
            (std::vector<DecisionKind>{DecisionKind::contactors_open, DecisionKind::state_changed}));
  EXPECT_FALSE(d[0].emergency);
  EXPECT_EQ(d[0].reason.rule, RuleKind::contactor_current);
  EXPECT_DOUBLE_EQ(d[0].reason.measured, 0.4);
  EXPECT_EQ(d[0].reason.since_ns, ms(2000));
  EXPECT_EQ(d[1].to, State::safe);
  EXPECT_EQ(d[1].reason.rule, RuleKind::stop_request);
  EXPECT_TRUE(s.stop_complete());
}

TEST(Stop, WhenTheCurrentStaysHighTheContactorsOpenAfterTheMaximumDelay) {
  Rig rig = rig_running(40);
  Supervisor& s = rig.supervisor;
  s.on_stop_request(StopOrigin::operator_command, ms(2000));
  EXPECT_TRUE(copy(s.tick(ms(2000) + test_config().contactor_max_delay_ns - 1ns)).empty());
  auto d = copy(s.tick(ms(2000) + test_config().contactor_max_delay_ns));
  const Decision* open = find(d, DecisionKind::contactors_open);
  ASSERT_NE(open, nullptr);
  EXPECT_TRUE(open->emergency);
  EXPECT_EQ(open->reason.rule, RuleKind::contactor_delay);
  EXPECT_TRUE(s.stop_complete());
}

TEST(Stop, WithEveryRelayOpenTheStopCompletesAtOnce) {
  Rig rig = make_rig();  // no current known, nothing ever closed
  auto d = copy(rig.supervisor.on_stop_request(StopOrigin::interrupt_signal, ms(5)));
  ASSERT_EQ(kinds(d),
            (std::vector<DecisionKind>{DecisionKind::state_changed, DecisionKind::inverter_off,
                                       DecisionKind::contactors_open, DecisionKind::state_changed}));
  EXPECT_FALSE(d[2].emergency);
  EXPECT_TRUE(rig.supervisor.stop_complete());
}

TEST(Stop, DuringPrechargeTheClosedPoleCountsAsClosed) {
  SupervisorConfig c = test_config();
  c.dangerous_silence_ns = 3600s;
  c.dangerous_sync_cycles = 1000;
  Rig rig = make_rig(c);
  rig.supervisor.on_module_pdo(1, ms(0));
  rig.sample(rig.battery_voltage, ms(0), 370);
  rig.supervisor.on_start_request(ms(10));  // main negative and precharge closed; no current known
  auto d = copy(rig.supervisor.on_stop_request(StopOrigin::terminate_signal, ms(100)));
  EXPECT_EQ(find(d, DecisionKind::contactors_open), nullptr) << "current unknown: wait for the maximum delay";
  d = copy(rig.supervisor.tick(ms(100) + c.contactor_max_delay_ns));
  ASSERT_NE(find(d, DecisionKind::contactors_open), nullptr);
  EXPECT_TRUE(rig.supervisor.stop_complete());
}

TEST(Stop, InSafeTheStopIsCompleteWithoutNewDecisions) {
  Rig rig = make_rig();
  rig.sample(rig.pack_current, ms(0), 0);
  rig.sample(rig.cells[4], ms(100), 4.3);
  ASSERT_EQ(rig.supervisor.state(), State::safe);
  EXPECT_TRUE(copy(rig.supervisor.on_stop_request(StopOrigin::terminate_signal, ms(200))).empty());
  EXPECT_TRUE(rig.supervisor.stop_complete());
}

TEST(Stop, ARepeatedStopChangesNothingAndAResetIsRefusedWhileStopping) {
  Rig rig = rig_running(-20);
  Supervisor& s = rig.supervisor;
  s.on_stop_request(StopOrigin::terminate_signal, ms(2000));
  EXPECT_TRUE(copy(s.on_stop_request(StopOrigin::interrupt_signal, ms(2010))).empty());
  rig.sample(rig.pack_current, ms(2100), 0);
  ASSERT_TRUE(s.stop_complete());
  auto d = copy(s.on_operator_reset(ms(2200)));
  ASSERT_EQ(kinds(d), (std::vector<DecisionKind>{DecisionKind::reset_refused}));
  EXPECT_EQ(d[0].reason.rule, RuleKind::stop_request);
  d = copy(s.on_start_request(ms(2300)));
  EXPECT_NE(find(d, DecisionKind::start_refused), nullptr);
  EXPECT_EQ(find(d, DecisionKind::relay_set), nullptr);
}

TEST(Stop, PumpAndFanKeepFollowingTheTemperaturesWhileStopping) {
  Rig rig = rig_running(-20);
  Supervisor& s = rig.supervisor;
  rig.sample(rig.max_temperature, ms(1500), 31);  // hot: cooling on
  ASSERT_TRUE(s.status().cooling_on);
  auto d = copy(s.on_stop_request(StopOrigin::terminate_signal, ms(2000)));
  EXPECT_EQ(find(d, DecisionKind::cooling_off), nullptr);
  d = rig.sample(rig.max_temperature, ms(2100), 28);
  EXPECT_NE(find(d, DecisionKind::cooling_off), nullptr);
}

}  // namespace
}  // namespace cellguard::safety
