// Actions: inverter off, contactor opening, pump and fan, nudges, SAFE latch and reset, precharge.
#include <cmath>

#include "safety/test_support.h"

namespace cellguard::safety {
namespace {

using namespace testing;

// ---- dangerous: inverter off at once, contactors open on low current or after the max delay ----

TEST(Dangerous, TheInverterGoesOffInTheSameCallAsTheOffendingSample) {
  Rig rig = make_rig();
  rig.sample(rig.pack_current, ms(0), 50);
  auto d = rig.sample(rig.cells[0], ms(10), 4.25);
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].kind, DecisionKind::state_changed);
  EXPECT_EQ(d[0].to, State::dangerous);
  EXPECT_EQ(d[1].kind, DecisionKind::inverter_off);
  EXPECT_EQ(d[1].time_ns, ms(10));
}

TEST(Dangerous, ContactorsOpenAsSoonAsTheCurrentDropsBelowTheThreshold) {
  Rig rig = make_rig();  // threshold 5 A
  rig.sample(rig.pack_current, ms(0), -60);
  rig.sample(rig.cells[0], ms(1000), 4.25);
  EXPECT_TRUE(rig.sample(rig.pack_current, ms(1100), -20).empty());
  EXPECT_TRUE(rig.sample(rig.pack_current, ms(1200), -5).empty());  // not below
  auto d = rig.sample(rig.pack_current, ms(1300), -4.9);
  const Decision* open = find(d, DecisionKind::contactors_open);
  ASSERT_NE(open, nullptr);
  EXPECT_FALSE(open->emergency);
  EXPECT_EQ(open->time_ns, ms(1300));
  EXPECT_EQ(open->reason.rule, RuleKind::contactor_current);
  EXPECT_DOUBLE_EQ(open->reason.measured, 4.9);
  EXPECT_EQ(open->reason.since_ns, ms(1000));
  EXPECT_EQ(rig.supervisor.state(), State::safe);
}

TEST(Dangerous, ContactorsOpenAtOnceWhenTheCurrentIsAlreadyLow) {
  Rig rig = make_rig();
  rig.sample(rig.pack_current, ms(0), 1);
  auto d = rig.sample(rig.cells[0], ms(10), 4.25);
  ASSERT_EQ(kinds(d),
            (std::vector<DecisionKind>{DecisionKind::state_changed, DecisionKind::inverter_off,
                                       DecisionKind::contactors_open, DecisionKind::state_changed}));
  EXPECT_EQ(d.back().to, State::safe);
}

TEST(Dangerous, CurrentChannelsOfModulesThatNeverJoinedDoNotMakeTheCurrentUnknown) {
  // The DBC defines 15 module slots; only fitted modules carry a current.
  Rig rig = make_rig();
  const ChannelId absent = add(rig.supervisor, "BMU09.CMA_Current", Quantity::pack_current, 9);
  const ChannelId present = add(rig.supervisor, "BMU02.CMA_Current", Quantity::pack_current, 2);
  rig.supervisor.on_module_pdo(2, ms(0));
  rig.sample(present, ms(0), 1);
  rig.sample(rig.pack_current, ms(0), 2);
  auto d = rig.sample(rig.cells[0], ms(10), 4.25);
  const Decision* open = find(d, DecisionKind::contactors_open);
  ASSERT_NE(open, nullptr) << "module 9 never joined: its silent current channel must not block the opening";
  EXPECT_FALSE(open->emergency);
  EXPECT_DOUBLE_EQ(open->reason.measured, 2);
  // Once module 9 joins, its current counts (and is unknown until its first sample).
  Rig rig2 = make_rig();
  const ChannelId joined = add(rig2.supervisor, "BMU09.CMA_Current", Quantity::pack_current, 9);
  rig2.supervisor.on_module_pdo(9, ms(0));
  rig2.sample(rig2.pack_current, ms(0), 1);
  d = rig2.sample(rig2.cells[0], ms(10), 4.25);
  EXPECT_EQ(find(d, DecisionKind::contactors_open), nullptr);
  d = rig2.sample(joined, ms(20), 0.5);
  ASSERT_NE(find(d, DecisionKind::contactors_open), nullptr);
  (void)absent;
}

TEST(Supervisor, CausesVersionChangesOnlyWhenACauseChanges) {
  Rig rig = make_rig();
  const auto v0 = rig.supervisor.causes_version();
  rig.sample(rig.cells[0], ms(0), 3.7);
  EXPECT_EQ(rig.supervisor.causes_version(), v0);
  rig.sample(rig.cells[0], ms(10), 4.15);  // warning
  const auto v1 = rig.supervisor.causes_version();
  EXPECT_NE(v1, v0);
  rig.sample(rig.cells[0], ms(20), 4.16);  // still warning
  EXPECT_EQ(rig.supervisor.causes_version(), v1);
  rig.sample(rig.cells[0], ms(30), 3.9);  // cleared
  EXPECT_NE(rig.supervisor.causes_version(), v1);
}

TEST(Dangerous, ContactorsOpenAsAnEmergencyAfterTheMaximumDelayIfTheCurrentNeverDrops) {
  Rig rig = make_rig();  // max delay 2 s
  rig.sample(rig.pack_current, ms(0), 80);
  rig.sample(rig.cells[0], ms(1000), 4.25);
  rig.sample(rig.pack_current, ms(2000), 75);
  EXPECT_EQ(rig.supervisor.next_deadline_ns(), ms(3000));
  EXPECT_TRUE(copy(rig.supervisor.tick(ms(3000) - 1ns)).empty());
  auto d = copy(rig.supervisor.tick(ms(3000)));
  const Decision* open = find(d, DecisionKind::contactors_open);
  ASSERT_NE(open, nullptr);
  EXPECT_TRUE(open->emergency);
  EXPECT_EQ(open->reason.rule, RuleKind::contactor_delay);
  EXPECT_DOUBLE_EQ(open->reason.measured, 75);
  EXPECT_EQ(rig.supervisor.state(), State::safe);
}

TEST(Dangerous, AStaleLowCurrentDoesNotOpenTheContactorsUnderLoad) {
  // The last current reading (0 A) is older than current_max_age (1 s): the current is unknown, so
  // the contactors wait for a fresh low reading or the maximum delay.
  Rig rig = make_rig();
  rig.sample(rig.pack_current, ms(0), 0);
  auto d = rig.sample(rig.cells[0], ms(1500), 4.25);
  EXPECT_EQ(find(d, DecisionKind::contactors_open), nullptr);
  EXPECT_EQ(rig.supervisor.state(), State::dangerous);
  d = rig.sample(rig.pack_current, ms(1600), 30);  // fresh and high: still waiting
  EXPECT_EQ(find(d, DecisionKind::contactors_open), nullptr);
  EXPECT_TRUE(copy(rig.supervisor.tick(ms(2700))).empty());  // 30 A became stale at 2.6 s: unknown
  d = copy(rig.supervisor.tick(ms(3500)));
  const Decision* open = find(d, DecisionKind::contactors_open);
  ASSERT_NE(open, nullptr);
  EXPECT_TRUE(open->emergency);
  EXPECT_EQ(open->reason.rule, RuleKind::contactor_delay);
  EXPECT_TRUE(std::isnan(open->reason.measured));
}

TEST(Dangerous, AnUnknownCurrentWaitsForTheMaximumDelay) {
  Rig rig = make_rig();
  rig.sample(rig.cells[0], ms(0), 4.25);
  EXPECT_EQ(rig.supervisor.state(), State::dangerous);
  auto d = copy(rig.supervisor.tick(ms(2000)));
  ASSERT_NE(find(d, DecisionKind::contactors_open), nullptr);
  EXPECT_TRUE(find(d, DecisionKind::contactors_open)->emergency);
}

TEST(Dangerous, ACauseClearingBeforeTheContactorsOpenStillEndsInSafe) {
  Rig rig = make_rig();
  rig.sample(rig.pack_current, ms(0), 80);
  rig.sample(rig.cells[0], ms(0), 4.25);
  rig.sample(rig.cells[0], ms(100), 3.9);
  EXPECT_EQ(rig.supervisor.state(), State::dangerous);
  rig.sample(rig.pack_current, ms(200), 0);
  EXPECT_EQ(rig.supervisor.state(), State::safe);
}

// ---- pump and fan ------------------------------------------------------------------------------

TEST(Cooling, PumpAndFanGoOnWhenAModuleIsHot) {
  Rig rig = make_rig();
  EXPECT_TRUE(rig.sample(rig.max_temperature, ms(0), 29.9).empty());
  auto d = rig.sample(rig.max_temperature, ms(100), 30);
  const Decision* on = find(d, DecisionKind::cooling_on);
  ASSERT_NE(on, nullptr);
  EXPECT_EQ(on->reason.rule, RuleKind::hot);
  EXPECT_DOUBLE_EQ(on->reason.threshold, 30);
}

TEST(Cooling, PumpAndFanStayOnUntilCooledToTheSecurityLevel) {
  Rig rig = make_rig();
  rig.sample(rig.max_temperature, ms(0), 35);
  EXPECT_EQ(find(rig.sample(rig.max_temperature, ms(100), 29.5), DecisionKind::cooling_off), nullptr);
  auto d = rig.sample(rig.max_temperature, ms(200), 29);
  const Decision* off = find(d, DecisionKind::cooling_off);
  ASSERT_NE(off, nullptr);
  EXPECT_EQ(off->reason.rule, RuleKind::cooled);
  EXPECT_DOUBLE_EQ(off->reason.threshold, 29);
}

TEST(Cooling, PumpAndFanStayOnWhileAnyTemperatureIsHot) {
  Rig rig = make_rig();
  rig.sample(rig.max_temperature, ms(0), 35);
  rig.sample(rig.board_temperature, ms(0), 31);
  EXPECT_EQ(find(rig.sample(rig.max_temperature, ms(100), 20), DecisionKind::cooling_off), nullptr);
  EXPECT_NE(find(rig.sample(rig.board_temperature, ms(200), 20), DecisionKind::cooling_off), nullptr);
}

TEST(Cooling, DangerousOverTemperatureTurnsTheInverterOffAndCoolingOn) {
  Rig rig = make_rig();
  auto d = rig.sample(rig.max_temperature, ms(0), 51);
  EXPECT_NE(find(d, DecisionKind::inverter_off), nullptr);
  EXPECT_NE(find(d, DecisionKind::cooling_on), nullptr);
}

// ---- nudges on voltage warnings ----------------------------------------------------------------

TEST(Nudge, ALowVoltageWarningNudgesTheInverterToCharge) {
  Rig rig = make_rig();
  auto d = rig.sample(rig.cells[0], ms(0), 2.79);
  const Decision* nudge = find(d, DecisionKind::inverter_nudge_charge);
  ASSERT_NE(nudge, nullptr);
  EXPECT_DOUBLE_EQ(nudge->setpoint_a, -2);  // negative charges (seed-rig.md sign convention)
  EXPECT_EQ(nudge->reason.rule, RuleKind::limit_low);
}

TEST(Nudge, AHighVoltageWarningNudgesTheInverterToDischarge) {
  Rig rig = make_rig();
  auto d = rig.sample(rig.module_voltage, ms(0), 48.2);
  ASSERT_NE(find(d, DecisionKind::inverter_nudge_discharge), nullptr);
  EXPECT_DOUBLE_EQ(find(d, DecisionKind::inverter_nudge_discharge)->setpoint_a, 2);
}

TEST(Nudge, WarningsInBothDirectionsHoldTheInverterAndClearingEndsTheNudge) {
  Rig rig = make_rig();
  rig.sample(rig.cells[0], ms(0), 2.79);
  EXPECT_NE(find(rig.sample(rig.cells[1], ms(10), 4.15), DecisionKind::inverter_hold), nullptr);
  EXPECT_NE(find(rig.sample(rig.cells[0], ms(20), 3.7), DecisionKind::inverter_nudge_discharge), nullptr);
  auto d = rig.sample(rig.cells[1], ms(30), 3.7);
  EXPECT_NE(find(d, DecisionKind::inverter_nudge_end), nullptr);
  EXPECT_EQ(rig.supervisor.state(), State::normal);
}

TEST(Nudge, ATemperatureWarningDoesNotNudge) {
  Rig rig = make_rig();
  auto d = rig.sample(rig.max_temperature, ms(0), 31);
  EXPECT_EQ(rig.supervisor.state(), State::warning);
  EXPECT_EQ(find(d, DecisionKind::inverter_nudge_charge), nullptr);
  EXPECT_EQ(find(d, DecisionKind::inverter_nudge_discharge), nullptr);
}

// ---- SAFE latch and operator reset -------------------------------------------------------------

Rig rig_in_safe() {
  Rig rig = make_rig();
  rig.sample(rig.pack_current, ms(0), 0);
  rig.sample(rig.cells[4], ms(100), 4.3);
  EXPECT_EQ(rig.supervisor.state(), State::safe);
  return rig;
}

TEST(Safe, SafeIsLatchedWhenTheCausesGoAway) {
  Rig rig = rig_in_safe();
  EXPECT_TRUE(rig.sample(rig.cells[4], ms(200), 3.9).empty());
  rig.supervisor.tick(sec(60));
  EXPECT_EQ(rig.supervisor.state(), State::safe);
}

TEST(Safe, AResetWhileACauseRemainsIsRefusedWithTheCause) {
  Rig rig = rig_in_safe();
  auto d = copy(rig.supervisor.on_operator_reset(ms(500)));
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].kind, DecisionKind::reset_refused);
  EXPECT_EQ(d[0].reason.channel, rig.cells[4]);
  EXPECT_EQ(d[0].reason.rule, RuleKind::limit_high);
  EXPECT_EQ(rig.supervisor.state(), State::safe);
}

TEST(Safe, AResetAfterTheCausesAreGoneReturnsToNormal) {
  Rig rig = rig_in_safe();
  rig.sample(rig.cells[4], ms(200), 4.0);
  auto d = copy(rig.supervisor.on_operator_reset(ms(500)));
  ASSERT_EQ(kinds(d), (std::vector<DecisionKind>{DecisionKind::state_changed, DecisionKind::reset_accepted}));
  EXPECT_EQ(d[0].from, State::safe);
  EXPECT_EQ(d[0].to, State::normal);
  EXPECT_EQ(d[0].reason.rule, RuleKind::operator_request);
  EXPECT_EQ(rig.supervisor.state(), State::normal);
}

TEST(Safe, AResetWithOnlyAWarningLeftReturnsToWarning) {
  Rig rig = rig_in_safe();
  rig.sample(rig.cells[4], ms(200), 4.15);
  rig.supervisor.on_operator_reset(ms(500));
  EXPECT_EQ(rig.supervisor.state(), State::warning);
}

TEST(Safe, AStartRequestInSafeIsRefused) {
  Rig rig = rig_in_safe();
  rig.supervisor.on_module_pdo(1, ms(150));
  auto d = copy(rig.supervisor.on_start_request(ms(200)));
  ASSERT_NE(find(d, DecisionKind::start_refused), nullptr);
  EXPECT_EQ(find(d, DecisionKind::relay_set), nullptr);
}

TEST(Safe, TheStatusNamesTheStateItsReasonAndTheCauses) {
  Rig rig = rig_in_safe();
  Status s = rig.supervisor.status();
  EXPECT_EQ(s.state, State::safe);
  EXPECT_EQ(s.state_reason.rule, RuleKind::limit_high);
  ASSERT_EQ(s.causes.size(), 1u);
  EXPECT_EQ(rig.supervisor.describe(s.causes[0], clock_at(ms(200))),
            "cell 5 of module 1: 4.30 V >= 4.20 V (dangerous) since 2026-12-07 01:36:42");
}

// ---- precharge (roles per relay, DC link checked before the main contactor) -------------------

// One module seen at 0 ms; its silence limit is raised so these tests see only the precharge rules
// (staleness has its own tests).
Rig rig_ready_to_start(SupervisorConfig c = test_config()) {
  c.dangerous_silence_ns = 3600s;
  c.dangerous_sync_cycles = 1000;
  Rig rig = make_rig(c);
  rig.supervisor.on_module_pdo(1, ms(0));
  rig.sample(rig.battery_voltage, ms(0), 377.8);
  rig.sample(rig.dc_link_voltage, ms(0), 0);
  return rig;
}

TEST(Precharge, AStartClosesTheNegativePoleAndThePrechargeRelay) {
  Rig rig = rig_ready_to_start();
  auto d = copy(rig.supervisor.on_start_request(ms(100)));
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].role, RelayRole::main_negative);
  EXPECT_EQ(d[0].relay, 2);
  EXPECT_TRUE(d[0].closed);
  EXPECT_EQ(d[1].role, RelayRole::precharge);
  EXPECT_EQ(d[1].relay, 3);
  EXPECT_TRUE(d[1].closed);
  EXPECT_EQ(rig.supervisor.status().precharge, PrechargePhase::precharging);
}

TEST(Precharge, TheMainContactorClosesOnceTheDcLinkMatchesTheBattery) {
  Rig rig = rig_ready_to_start();
  rig.supervisor.on_start_request(ms(100));
  EXPECT_TRUE(rig.sample(rig.dc_link_voltage, ms(2000), 300).empty());
  auto d = rig.sample(rig.dc_link_voltage, ms(3000), 370);  // within 10 V
  ASSERT_EQ(kinds(d), (std::vector<DecisionKind>{DecisionKind::relay_set, DecisionKind::relay_set,
                                                 DecisionKind::precharge_complete}));
  EXPECT_EQ(d[0].role, RelayRole::main_positive);
  EXPECT_TRUE(d[0].closed);
  EXPECT_EQ(d[1].role, RelayRole::precharge);
  EXPECT_FALSE(d[1].closed);
  EXPECT_DOUBLE_EQ(d[2].reason.measured, 370);                           // DC link ...
  EXPECT_NEAR(d[2].reason.threshold - d[2].reason.measured, 7.8, 1e-9);  // ... within 10 V of the battery
  EXPECT_TRUE(rig.supervisor.status().contactors_closed);
}

TEST(Precharge, OnASlowBoardNoMatchCountsBeforeTheRelaysCanHaveClosed) {
  // The rig's sketch applies a command up to ~2 s after it was given: a DC link that already
  // matches (charged from before) must not close the main contactor before then.
  SupervisorConfig c = test_config();
  c.precharge.settle_ns = 2s;
  Rig rig = rig_ready_to_start(c);
  rig.supervisor.on_start_request(ms(100));
  EXPECT_TRUE(rig.sample(rig.dc_link_voltage, ms(2099), 377).empty());
  auto d = rig.sample(rig.dc_link_voltage, ms(2100), 377);
  ASSERT_NE(find(d, DecisionKind::precharge_complete), nullptr);
  // The timeout counts after the settle time: no retry at 10.1 s.
  Rig slow = rig_ready_to_start(c);
  slow.supervisor.on_start_request(ms(100));
  EXPECT_EQ(find(copy(slow.supervisor.tick(ms(12099))), DecisionKind::precharge_retry), nullptr);
  EXPECT_NE(find(copy(slow.supervisor.tick(ms(12100))), DecisionKind::precharge_retry), nullptr);
}

TEST(Precharge, ADcLinkMismatchRetriesAfterTheDelayThenLocksOut) {
  SupervisorConfig c = test_config();
  c.precharge.max_attempts = 2;  // timeout 10 s, retry after 5 s
  Rig rig = rig_ready_to_start(c);
  Supervisor& s = rig.supervisor;
  s.on_start_request(ms(0));
  rig.sample(rig.dc_link_voltage, sec(5), 200);
  auto d = copy(s.tick(sec(10)));
  ASSERT_EQ(kinds(d), (std::vector<DecisionKind>{DecisionKind::relay_set, DecisionKind::relay_set,
                                                 DecisionKind::precharge_retry}));
  EXPECT_FALSE(d[0].closed);
  EXPECT_FALSE(d[1].closed);
  EXPECT_DOUBLE_EQ(d[2].reason.measured, 200);
  EXPECT_NEAR(d[2].reason.threshold - d[2].reason.measured, 177.8, 1e-9);
  EXPECT_TRUE(copy(s.tick(sec(15) - 1ns)).empty());
  d = copy(s.tick(sec(15)));
  ASSERT_EQ(kinds(d), (std::vector<DecisionKind>{DecisionKind::relay_set, DecisionKind::relay_set}));
  d = copy(s.tick(sec(25)));
  ASSERT_NE(find(d, DecisionKind::precharge_lockout), nullptr);
  EXPECT_DOUBLE_EQ(find(d, DecisionKind::precharge_lockout)->reason.measured, 2);
  EXPECT_EQ(s.status().precharge, PrechargePhase::locked_out);

  d = copy(s.on_start_request(sec(30)));
  ASSERT_NE(find(d, DecisionKind::start_refused), nullptr);
  EXPECT_EQ(find(d, DecisionKind::start_refused)->reason.rule, RuleKind::precharge);
}

TEST(Precharge, AnOperatorResetLiftsTheLockout) {
  SupervisorConfig c = test_config();
  c.precharge.max_attempts = 1;
  Rig rig = rig_ready_to_start(c);
  rig.supervisor.on_start_request(ms(0));
  rig.supervisor.tick(sec(10));
  ASSERT_EQ(rig.supervisor.status().precharge, PrechargePhase::locked_out);
  EXPECT_NE(find(copy(rig.supervisor.on_operator_reset(sec(11))), DecisionKind::reset_accepted), nullptr);
  EXPECT_NE(find(copy(rig.supervisor.on_start_request(sec(12))), DecisionKind::relay_set), nullptr);
}

TEST(Precharge, ADangerousCauseDuringPrechargeOpensEverything) {
  Rig rig = rig_ready_to_start();
  rig.sample(rig.pack_current, ms(0), 0);
  rig.supervisor.on_start_request(ms(100));
  auto d = rig.sample(rig.cells[0], ms(200), 4.3);
  EXPECT_NE(find(d, DecisionKind::contactors_open), nullptr);
  EXPECT_EQ(rig.supervisor.status().precharge, PrechargePhase::idle);
  EXPECT_TRUE(rig.sample(rig.dc_link_voltage, ms(300), 377).empty());  // no late closing
}

// Found by the property test: a precharge lockout must not be liftable while DANGEROUS.
TEST(Safe, AResetWhileDangerousIsRefusedEvenWithAPrechargeLockout) {
  SupervisorConfig c = test_config();
  c.precharge.max_attempts = 1;
  c.precharge.timeout_ns = 500ms;
  Rig rig = make_rig(c);
  Supervisor& s = rig.supervisor;
  s.on_module_pdo(1, ms(0));
  rig.sample(rig.pack_current, ms(0), 50);
  s.on_start_request(ms(0));
  s.tick(ms(500));
  ASSERT_EQ(s.status().precharge, PrechargePhase::locked_out);
  rig.sample(rig.max_temperature, ms(600), 55);
  ASSERT_EQ(s.state(), State::dangerous);
  auto d = copy(s.on_operator_reset(ms(601)));
  ASSERT_EQ(kinds(d), std::vector<DecisionKind>{DecisionKind::reset_refused});
  EXPECT_EQ(d[0].reason.quantity, Quantity::module_max_temperature);
  EXPECT_EQ(s.status().precharge, PrechargePhase::locked_out);
}

TEST(Safe, AResetOutsideSafeIsRefusedAsNothingToReset) {
  Rig rig = make_rig();
  auto d = copy(rig.supervisor.on_operator_reset(ms(1)));
  ASSERT_EQ(kinds(d), std::vector<DecisionKind>{DecisionKind::reset_refused});
  EXPECT_EQ(d[0].reason.rule, RuleKind::state);
  EXPECT_EQ(rig.supervisor.state(), State::normal);
}

TEST(Safe, ASilentModuleBlocksTheResetUntilItAnswersAgain) {
  Rig rig = make_rig();
  Supervisor& s = rig.supervisor;
  rig.sample(rig.pack_current, ms(0), 0);
  s.on_module_pdo(1, ms(0));
  s.tick(sec(1));
  ASSERT_EQ(s.state(), State::safe);
  auto d = copy(s.on_operator_reset(sec(2)));
  ASSERT_EQ(kinds(d), std::vector<DecisionKind>{DecisionKind::reset_refused});
  EXPECT_EQ(d[0].reason.rule, RuleKind::module_stale);
  EXPECT_EQ(d[0].reason.module_id, 1);
  s.on_module_pdo(1, sec(3));
  EXPECT_NE(find(copy(s.on_operator_reset(sec(3))), DecisionKind::reset_accepted), nullptr);
  EXPECT_EQ(s.state(), State::normal);
}

}  // namespace
}  // namespace cellguard::safety
