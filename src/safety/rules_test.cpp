// Limit rules, debounce, hysteresis, staleness, board and inverter links (issue 4 items 3-6).
#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>

#include "safety/test_support.h"

namespace cellguard::safety {
namespace {

using namespace testing;

// ---- limits: every rule's warning/dangerous high/low, with the spec's >= / <= ----------------

TEST(Limits, ACellAtTheWarningHighThresholdGivesWarning) {
  Rig rig = make_rig();
  auto d = rig.sample(rig.cells[0], ms(10), 4.1);
  EXPECT_EQ(rig.supervisor.state(), State::warning);
  const Decision* change = find(d, DecisionKind::state_changed);
  ASSERT_NE(change, nullptr);
  EXPECT_EQ(change->reason.rule, RuleKind::limit_high);
  EXPECT_EQ(change->reason.channel, rig.cells[0]);
  EXPECT_DOUBLE_EQ(change->reason.measured, 4.1);
  EXPECT_DOUBLE_EQ(change->reason.threshold, 4.1);
  EXPECT_EQ(change->reason.since_ns, ms(10));
}

TEST(Limits, ACellJustBelowTheWarningHighThresholdStaysNormal) {
  Rig rig = make_rig();
  EXPECT_TRUE(rig.sample(rig.cells[0], ms(10), 4.0999).empty());
  EXPECT_EQ(rig.supervisor.state(), State::normal);
}

TEST(Limits, ACellAtTheDangerousHighThresholdGivesDangerous) {
  Rig rig = make_rig();
  auto d = rig.sample(rig.cells[3], ms(10), 4.2);
  EXPECT_EQ(rig.supervisor.state(), State::dangerous);
  ASSERT_NE(find(d, DecisionKind::inverter_off), nullptr);
  EXPECT_EQ(find(d, DecisionKind::inverter_off)->reason.rule, RuleKind::limit_high);
}

TEST(Limits, ACellAtTheWarningLowThresholdGivesWarning) {
  Rig rig = make_rig();
  auto d = rig.sample(rig.cells[0], ms(10), 2.8);
  EXPECT_EQ(rig.supervisor.state(), State::warning);
  EXPECT_EQ(find(d, DecisionKind::state_changed)->reason.rule, RuleKind::limit_low);
}

TEST(Limits, ALowCellDangerousIsAnUnderVoltageCauseNotAnOverVoltageOne) {  // seed flaw 2
  Rig rig = make_rig();
  auto d = rig.sample(rig.cells[5], ms(10), 2.7);
  EXPECT_EQ(rig.supervisor.state(), State::dangerous);
  const Decision* off = find(d, DecisionKind::inverter_off);
  ASSERT_NE(off, nullptr);
  EXPECT_EQ(off->reason.rule, RuleKind::limit_low);
  EXPECT_EQ(off->reason.level, Level::dangerous);
  EXPECT_DOUBLE_EQ(off->reason.threshold, 2.7);
}

TEST(Limits, TheLastCellIsChecked) {  // seed flaw 2: the original skipped it
  Rig rig = make_rig();
  auto d = rig.sample(rig.cells.back(), ms(10), 4.25);
  EXPECT_EQ(rig.supervisor.state(), State::dangerous);
  EXPECT_EQ(find(d, DecisionKind::inverter_off)->reason.channel, rig.cells.back());
  EXPECT_EQ(rig.supervisor.channel(rig.cells.back()).name, "BMU01.Cell_14_Voltage");
}

struct LimitCase {
  const char* name;
  Quantity quantity;
  double value;
  State state;
  RuleKind rule;
};

class EveryRule : public ::testing::TestWithParam<LimitCase> {};

TEST_P(EveryRule, GivesItsStateAtItsThreshold) {
  const LimitCase& c = GetParam();
  Rig rig = make_rig();
  ChannelId id = kNoChannel;
  switch (c.quantity) {
    case Quantity::module_voltage:
      id = rig.module_voltage;
      break;
    case Quantity::module_max_temperature:
      id = rig.max_temperature;
      break;
    case Quantity::inverter_battery_voltage:
      id = rig.battery_voltage;
      break;
    default:
      id = rig.cells[0];
      break;
  }
  auto d = rig.sample(id, ms(1), c.value);
  EXPECT_EQ(rig.supervisor.state(), c.state);
  const Decision* change = find(d, DecisionKind::state_changed);
  ASSERT_NE(change, nullptr);
  EXPECT_EQ(change->reason.rule, c.rule);
  EXPECT_EQ(change->reason.quantity, c.quantity);
  EXPECT_DOUBLE_EQ(change->reason.threshold, c.value);
}

INSTANTIATE_TEST_SUITE_P(
    RigLimitsTable, EveryRule,
    ::testing::Values(
        LimitCase{"module_warning_high", Quantity::module_voltage, 48, State::warning, RuleKind::limit_high},
        LimitCase{"module_dangerous_high", Quantity::module_voltage, 49, State::dangerous,
                  RuleKind::limit_high},
        LimitCase{"module_warning_low", Quantity::module_voltage, 34, State::warning, RuleKind::limit_low},
        LimitCase{"module_dangerous_low", Quantity::module_voltage, 33, State::dangerous,
                  RuleKind::limit_low},
        LimitCase{"temperature_warning_high", Quantity::module_max_temperature, 30, State::warning,
                  RuleKind::limit_high},
        LimitCase{"temperature_dangerous_high", Quantity::module_max_temperature, 50, State::dangerous,
                  RuleKind::limit_high},
        LimitCase{"inverter_warning_high", Quantity::inverter_battery_voltage, 384, State::warning,
                  RuleKind::limit_high},
        LimitCase{"inverter_dangerous_high", Quantity::inverter_battery_voltage, 390, State::dangerous,
                  RuleKind::limit_high},
        LimitCase{"inverter_warning_low", Quantity::inverter_battery_voltage, 268, State::warning,
                  RuleKind::limit_low},
        LimitCase{"inverter_dangerous_low", Quantity::inverter_battery_voltage, 264, State::dangerous,
                  RuleKind::limit_low},
        LimitCase{"cell_warning_high", Quantity::cell_voltage, 4.1, State::warning, RuleKind::limit_high},
        LimitCase{"cell_dangerous_high", Quantity::cell_voltage, 4.2, State::dangerous, RuleKind::limit_high},
        LimitCase{"cell_warning_low", Quantity::cell_voltage, 2.8, State::warning, RuleKind::limit_low},
        LimitCase{"cell_dangerous_low", Quantity::cell_voltage, 2.7, State::dangerous, RuleKind::limit_low}),
    [](const ::testing::TestParamInfo<LimitCase>& param_info) { return std::string(param_info.param.name); });

TEST(Limits, ConfiguredBoardAndMinimumTemperatureRulesAreChecked) {
  SupervisorConfig c = test_config();
  c.rule(Quantity::board_pressure).dangerous_high = 6.0;
  c.rule(Quantity::module_min_temperature).warning_low = 5.0;
  Rig rig = make_rig(c);
  rig.sample(rig.min_temperature, ms(1), 4.0);
  EXPECT_EQ(rig.supervisor.state(), State::warning);
  auto d = rig.sample(rig.board_pressure, ms(2), 6.5);
  EXPECT_EQ(rig.supervisor.state(), State::dangerous);
  EXPECT_EQ(find(d, DecisionKind::inverter_off)->reason.quantity, Quantity::board_pressure);
}

TEST(Limits, ASampleForAnUnknownChannelOrANonFiniteValueIsRefused) {
  Rig rig = make_rig();
  EXPECT_FALSE(rig.supervisor.on_sample(9999, ms(1), 3.7).ok());
  EXPECT_FALSE(rig.supervisor.on_sample(rig.cells[0], ms(1), std::nan("")).ok());
  EXPECT_EQ(rig.supervisor.state(), State::normal);
}

// ---- hysteresis and debounce -------------------------------------------------------------------

TEST(Hysteresis, AWarningClearsOnlyBelowThresholdMinusHysteresis) {
  Rig rig = make_rig();  // cell hysteresis 0.02 V
  rig.sample(rig.cells[0], ms(1), 4.12);
  EXPECT_TRUE(rig.sample(rig.cells[0], ms(2), 4.09).empty());
  EXPECT_TRUE(rig.sample(rig.cells[0], ms(3), 4.081).empty());
  EXPECT_EQ(rig.supervisor.state(), State::warning);
  auto d = rig.sample(rig.cells[0], ms(4), 4.079);
  EXPECT_EQ(rig.supervisor.state(), State::normal);
  const Decision* change = find(d, DecisionKind::state_changed);
  ASSERT_NE(change, nullptr);
  EXPECT_EQ(change->from, State::warning);
  EXPECT_DOUBLE_EQ(change->reason.measured, 4.079);
}

TEST(Hysteresis, ALowWarningClearsOnlyAboveThresholdPlusHysteresis) {
  Rig rig = make_rig();
  rig.sample(rig.cells[0], ms(1), 2.75);
  rig.sample(rig.cells[0], ms(2), 2.819);
  EXPECT_EQ(rig.supervisor.state(), State::warning);
  rig.sample(rig.cells[0], ms(3), 2.821);
  EXPECT_EQ(rig.supervisor.state(), State::normal);
}

TEST(Debounce, ASpikeShorterThanTheDebounceIsIgnored) {
  SupervisorConfig c = test_config();
  c.rule(Quantity::cell_voltage).warning_debounce_ns = 300ms;
  Rig rig = make_rig(c);
  EXPECT_TRUE(rig.sample(rig.cells[0], ms(1000), 4.15).empty());
  EXPECT_TRUE(rig.sample(rig.cells[0], ms(1299), 4.0).empty());
  EXPECT_TRUE(copy(rig.supervisor.tick(ms(2000))).empty());
  EXPECT_EQ(rig.supervisor.state(), State::normal);
}

TEST(Debounce, ALevelHeldLongerTripsAtExactlyTheDebounceEnd) {
  SupervisorConfig c = test_config();
  c.rule(Quantity::cell_voltage).warning_debounce_ns = 300ms;
  Rig rig = make_rig(c);
  rig.sample(rig.cells[0], ms(1000), 4.15);
  EXPECT_EQ(rig.supervisor.next_deadline_ns(), ms(1300));
  EXPECT_TRUE(copy(rig.supervisor.tick(ms(1300) - 1ns)).empty());
  auto d = copy(rig.supervisor.tick(ms(1300)));
  ASSERT_NE(find(d, DecisionKind::state_changed), nullptr);
  EXPECT_EQ(find(d, DecisionKind::state_changed)->time_ns, ms(1300));
  EXPECT_EQ(find(d, DecisionKind::state_changed)->reason.since_ns, ms(1000));
  EXPECT_EQ(rig.supervisor.state(), State::warning);
}

TEST(Debounce, ASampleAtTheDebounceEndTripsWithoutATick) {
  SupervisorConfig c = test_config();
  c.rule(Quantity::cell_voltage).warning_debounce_ns = 300ms;
  Rig rig = make_rig(c);
  rig.sample(rig.cells[0], ms(0), 4.15);
  rig.sample(rig.cells[0], ms(100), 4.16);
  EXPECT_EQ(rig.supervisor.state(), State::normal);
  rig.sample(rig.cells[0], ms(300), 4.17);
  EXPECT_EQ(rig.supervisor.state(), State::warning);
}

TEST(Debounce, ADangerousDebounceOfZeroTripsOnTheFirstSample) {
  SupervisorConfig c = test_config();
  c.rule(Quantity::cell_voltage).warning_debounce_ns = 300ms;
  Rig rig = make_rig(c);
  auto d = rig.sample(rig.cells[0], ms(5), 4.3);
  EXPECT_EQ(rig.supervisor.state(), State::dangerous);
  EXPECT_NE(find(d, DecisionKind::inverter_off), nullptr);
}

TEST(Debounce, ADangerousDebounceDelaysTheTripButTheWarningStillCounts) {
  SupervisorConfig c = test_config();
  c.rule(Quantity::cell_voltage).dangerous_debounce_ns = 50ms;
  Rig rig = make_rig(c);
  rig.sample(rig.cells[0], ms(0), 4.3);
  EXPECT_EQ(rig.supervisor.state(), State::warning);
  auto d = copy(rig.supervisor.tick(ms(50)));
  EXPECT_EQ(rig.supervisor.state(), State::dangerous);
  EXPECT_EQ(find(d, DecisionKind::inverter_off)->time_ns, ms(50));
}

// ---- configuration -----------------------------------------------------------------------------

TEST(Config, TheRigDefaultsAreValid) { EXPECT_TRUE(validate(rig_defaults()).empty()); }

TEST(Config, AWarningOutsideItsDangerousLevelIsRefused) {
  SupervisorConfig c = rig_defaults();
  c.rule(Quantity::cell_voltage).warning_high = 4.3;
  EXPECT_FALSE(Supervisor::create(c).ok());
}

TEST(Config, AHysteresisWiderThanTheWarningBandIsRefused) {
  SupervisorConfig c = rig_defaults();
  c.rule(Quantity::module_voltage).hysteresis = 1.0;
  auto r = validate(c);
  ASSERT_EQ(r.size(), 2u);  // both gaps (48..49 V and 33..34 V) are 1 V wide
  for (const ConfigProblem& p : r) {
    EXPECT_EQ(p.field, ConfigField::hysteresis);
    EXPECT_EQ(p.quantity, Quantity::module_voltage);
    EXPECT_NE(to_string(p).find("module_voltage.hysteresis: 1 must be smaller than the gap"),
              std::string::npos)
        << to_string(p);
  }
  // Supervisor::create names the setting too.
  auto created = Supervisor::create(c);
  ASSERT_FALSE(created.ok());
  EXPECT_NE(created.error().message.find("module_voltage"), std::string::npos);
}

TEST(Config, EveryProblemNamesItsSetting) {
  // One broken setting at a time: exactly one problem, at that setting (and rule). Every setting is
  // covered, except those only named in other settings' messages (hot_c: "cooled_c must be below
  // hot_c"; the precharge relay: the other roles must differ from it).
  using F = ConfigField;
  using Q = Quantity;
  const double inf = std::numeric_limits<double>::infinity();
  struct Case {
    F field;
    Q quantity;
    std::function<void(SupervisorConfig&)> change;
  };
  const std::vector<Case> cases{
      {F::warning_high, Q::cell_voltage, [](auto& c) { c.rule(Q::cell_voltage).warning_high = 4.3; }},
      {F::dangerous_high, Q::module_voltage,
       [&](auto& c) { c.rule(Q::module_voltage).dangerous_high = inf; }},
      {F::warning_low, Q::cell_voltage, [](auto& c) { c.rule(Q::cell_voltage).warning_low = 2.6; }},
      {F::dangerous_low, Q::module_max_temperature,
       [](auto& c) { c.rule(Q::module_max_temperature).dangerous_low = 60; }},
      {F::hysteresis, Q::inverter_battery_voltage,
       [](auto& c) { c.rule(Q::inverter_battery_voltage).hysteresis = -1; }},
      {F::warning_debounce_ns, Q::cell_voltage,
       [](auto& c) { c.rule(Q::cell_voltage).warning_debounce_ns = -1ns; }},
      {F::dangerous_debounce_ns, Q::board_pressure,
       [](auto& c) { c.rule(Q::board_pressure).dangerous_debounce_ns = -1ns; }},
      {F::expected_module_count, Q::cell_voltage, [](auto& c) { c.expected_module_count = 128; }},
      {F::stale_sync_cycles, Q::cell_voltage, [](auto& c) { c.stale_sync_cycles = 0; }},
      {F::dangerous_sync_cycles, Q::cell_voltage,
       [](auto& c) { c.dangerous_sync_cycles = c.stale_sync_cycles; }},
      {F::dangerous_silence_ns, Q::cell_voltage, [](auto& c) { c.dangerous_silence_ns = 0ns; }},
      {F::board_timeout_ns, Q::cell_voltage, [](auto& c) { c.board_timeout_ns = 0ns; }},
      {F::inverter_failure_limit, Q::cell_voltage, [](auto& c) { c.inverter_failure_limit = 0; }},
      {F::inverter_readings_timeout_ns, Q::cell_voltage,
       [](auto& c) { c.inverter_readings_timeout_ns = 0ns; }},
      {F::inverter_heartbeat_timeout_ns, Q::cell_voltage,
       [](auto& c) { c.inverter_heartbeat_timeout_ns = -1ns; }},
      {F::contactor_open_current_a, Q::cell_voltage, [](auto& c) { c.contactor_open_current_a = 0; }},
      {F::contactor_max_delay_ns, Q::cell_voltage, [](auto& c) { c.contactor_max_delay_ns = -1ns; }},
      {F::cooled_c, Q::cell_voltage, [](auto& c) { c.cooled_c = c.hot_c; }},
      {F::nudge_current_a, Q::cell_voltage, [](auto& c) { c.nudge_current_a = -2; }},
      {F::main_positive_relay, Q::cell_voltage, [](auto& c) { c.precharge.relays.main_positive = 3; }},
      {F::main_negative_relay, Q::cell_voltage, [](auto& c) { c.precharge.relays.main_negative = 1; }},
      {F::match_tolerance_v, Q::cell_voltage, [](auto& c) { c.precharge.match_tolerance_v = 0; }},
      {F::precharge_timeout_ns, Q::cell_voltage, [](auto& c) { c.precharge.timeout_ns = 0ns; }},
      {F::retry_delay_ns, Q::cell_voltage, [](auto& c) { c.precharge.retry_delay_ns = -1ns; }},
      {F::max_attempts, Q::cell_voltage, [](auto& c) { c.precharge.max_attempts = 0; }},
      {F::settle_ns, Q::cell_voltage, [](auto& c) { c.precharge.settle_ns = -1ns; }},
  };
  std::vector<F> covered{F::hot_c, F::precharge_relay};
  for (const Case& k : cases) {
    SCOPED_TRACE(std::string(to_string(k.field)));
    SupervisorConfig c = rig_defaults();
    k.change(c);
    const auto problems = validate(c);
    ASSERT_EQ(problems.size(), 1u) << (problems.empty() ? "" : to_string(problems[0]));
    EXPECT_EQ(problems[0].field, k.field) << to_string(problems[0]);
    if (is_rule_field(k.field)) {
      EXPECT_EQ(problems[0].quantity, k.quantity) << to_string(problems[0]);
    }
    EXPECT_FALSE(problems[0].message.empty());
    EXPECT_FALSE(Supervisor::create(c).ok());
    covered.push_back(k.field);
  }
  for (int i = 0; to_string(static_cast<F>(i)) != "?"; ++i) {
    EXPECT_NE(std::find(covered.begin(), covered.end(), static_cast<F>(i)), covered.end())
        << to_string(static_cast<F>(i)) << " has no case";
  }
}

TEST(Config, MessagesNameOtherSettingsAsTheCallerDoes) {
  SupervisorConfig c = rig_defaults();
  c.cooled_c = 31;
  auto names = [](ConfigField f) {
    return f == ConfigField::hot_c ? std::string("safety.hot_c") : std::string("?");
  };
  auto problems = validate(c, names);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].message, "must be below safety.hot_c (30)");
  EXPECT_EQ(to_string(validate(c)[0]), "cooled_c: must be below hot_c (30)");
}

TEST(Config, AModuleQuantityWithoutAModuleIdIsRefused) {
  auto s = Supervisor::create(test_config());
  ASSERT_TRUE(s.ok());
  EXPECT_FALSE(s->add_channel(ChannelSpec{"x", Quantity::cell_voltage, 0}).ok());
  EXPECT_FALSE(s->add_channel(ChannelSpec{"y", Quantity::board_pressure, 200}).ok());
}

// ---- modules: discovery and staleness (item 3) -------------------------------------------------

TEST(Modules, AModuleJoiningIsAnEvent) {
  Rig rig = make_rig();
  auto d = copy(rig.supervisor.on_module_pdo(3, ms(5)));
  const Decision* joined = find(d, DecisionKind::module_joined);
  ASSERT_NE(joined, nullptr);
  EXPECT_EQ(joined->reason.module_id, 3);
  EXPECT_DOUBLE_EQ(joined->reason.measured, 1);
  EXPECT_TRUE(copy(rig.supervisor.on_module_pdo(3, ms(6))).empty());
}

TEST(Modules, AModuleMissingItsPdosForThreeSyncCyclesIsStaleWarning) {
  Rig rig = make_rig();
  Supervisor& s = rig.supervisor;
  s.on_sync_sent(ms(0));
  s.on_module_pdo(1, ms(5));
  EXPECT_TRUE(copy(s.on_sync_sent(ms(100))).empty());  // cycle 0 answered
  EXPECT_TRUE(copy(s.on_sync_sent(ms(200))).empty());  // cycle 1 missed
  EXPECT_TRUE(copy(s.on_sync_sent(ms(300))).empty());  // cycle 2 missed
  auto d = copy(s.on_sync_sent(ms(400)));              // cycle 3 missed
  EXPECT_EQ(s.state(), State::warning);
  const Decision* change = find(d, DecisionKind::state_changed);
  ASSERT_NE(change, nullptr);
  EXPECT_EQ(change->reason.rule, RuleKind::module_stale);
  EXPECT_EQ(change->reason.module_id, 1);
  EXPECT_DOUBLE_EQ(change->reason.measured, 3);
  EXPECT_EQ(change->reason.since_ns, ms(5));
}

TEST(Modules, AStaleModuleThatAnswersAgainClearsItsWarning) {
  Rig rig = make_rig();
  Supervisor& s = rig.supervisor;
  s.on_module_pdo(1, ms(5));
  for (int k = 1; k <= 4; ++k) s.on_sync_sent(ms(100 * k));
  EXPECT_EQ(s.state(), State::warning);
  s.on_module_pdo(1, ms(405));
  EXPECT_EQ(s.state(), State::normal);
}

TEST(Modules, AModuleStillMissingAfterTenSyncCyclesIsDangerous) {
  Rig rig = make_rig();
  Supervisor& s = rig.supervisor;
  s.on_sync_sent(ms(0));
  s.on_module_pdo(1, ms(5));
  for (int k = 1; k <= 10; ++k) s.on_sync_sent(ms(50 * k));  // 50 ms SYNC: 10 cycles before 1 s
  EXPECT_EQ(s.state(), State::warning);
  auto d = copy(s.on_sync_sent(ms(550)));
  EXPECT_EQ(s.state(), State::dangerous);
  const Decision* off = find(d, DecisionKind::inverter_off);
  ASSERT_NE(off, nullptr);
  EXPECT_EQ(off->reason.rule, RuleKind::module_stale);
  EXPECT_DOUBLE_EQ(off->reason.measured, 10);
}

TEST(Modules, AModuleSilentForOneSecondIsDangerousEvenWithFewSyncs) {
  Rig rig = make_rig();
  Supervisor& s = rig.supervisor;
  s.on_module_pdo(1, ms(5));
  EXPECT_EQ(s.next_deadline_ns(), ms(1005));
  EXPECT_TRUE(copy(s.tick(ms(1005) - 1ns)).empty());
  auto d = copy(s.tick(ms(1005)));
  EXPECT_EQ(s.state(), State::dangerous);
  EXPECT_EQ(find(d, DecisionKind::inverter_off)->reason.rule, RuleKind::module_stale);
  EXPECT_EQ(find(d, DecisionKind::inverter_off)->time_ns, ms(1005));
}

TEST(Modules, ASilentModuleKeepsItsLastLimitCause) {  // seed flaw 3: it does not vanish
  Rig rig = make_rig();
  Supervisor& s = rig.supervisor;
  s.on_module_pdo(1, ms(5));
  rig.sample(rig.cells[2], ms(6), 4.15);
  for (int k = 1; k <= 4; ++k) s.on_sync_sent(ms(100 * k));
  auto causes = s.active_causes();
  ASSERT_EQ(causes.size(), 2u);
  EXPECT_EQ(causes[0].rule, RuleKind::limit_high);
  EXPECT_EQ(causes[1].rule, RuleKind::module_stale);
}

TEST(Modules, FewerModulesThanExpectedRefusesToStartWithTheReason) {
  SupervisorConfig c = test_config();
  c.expected_module_count = 2;
  Rig rig = make_rig(c);
  rig.supervisor.on_module_pdo(1, ms(5));
  auto d = copy(rig.supervisor.on_start_request(ms(10)));
  const Decision* refused = find(d, DecisionKind::start_refused);
  ASSERT_NE(refused, nullptr);
  EXPECT_EQ(refused->reason.rule, RuleKind::module_count);
  EXPECT_DOUBLE_EQ(refused->reason.measured, 1);
  EXPECT_DOUBLE_EQ(refused->reason.threshold, 2);
  EXPECT_EQ(find(d, DecisionKind::relay_set), nullptr);
}

// ---- board, inverter link, insulation ----------------------------------------------------------

TEST(Board, NoValidLineForThreeSecondsIsDangerous) {
  SupervisorConfig c = test_config();
  c.board_expected = true;
  Rig rig = make_rig(c);
  Supervisor& s = rig.supervisor;
  s.tick(ms(0));
  s.on_board_line_valid(ms(1000));
  EXPECT_TRUE(copy(s.tick(ms(4000) - 1ns)).empty());
  auto d = copy(s.tick(ms(4000)));
  EXPECT_EQ(s.state(), State::dangerous);
  const Decision* off = find(d, DecisionKind::inverter_off);
  ASSERT_NE(off, nullptr);
  EXPECT_EQ(off->reason.rule, RuleKind::board_silent);
  EXPECT_EQ(off->reason.since_ns, ms(1000));
}

TEST(Board, LinesInTimeKeepTheStateNormal) {
  SupervisorConfig c = test_config();
  c.board_expected = true;
  Rig rig = make_rig(c);
  for (int k = 0; k < 10; ++k) rig.supervisor.on_board_line_valid(sec(k));
  rig.supervisor.tick(sec(11));
  EXPECT_EQ(rig.supervisor.state(), State::normal);
}

TEST(Inverter, NConsecutiveLinkFailuresAreDangerous) {
  Rig rig = make_rig();  // limit 3
  Supervisor& s = rig.supervisor;
  s.on_inverter_link(false, ms(100));
  s.on_inverter_link(false, ms(200));
  s.on_inverter_link(true, ms(300));  // a success restarts the count
  s.on_inverter_link(false, ms(400));
  s.on_inverter_link(false, ms(500));
  EXPECT_EQ(s.state(), State::normal);
  auto d = copy(s.on_inverter_link(false, ms(600)));
  EXPECT_EQ(s.state(), State::dangerous);
  const Decision* off = find(d, DecisionKind::inverter_off);
  ASSERT_NE(off, nullptr);
  EXPECT_EQ(off->reason.rule, RuleKind::inverter_link);
  EXPECT_DOUBLE_EQ(off->reason.measured, 3);
  EXPECT_EQ(off->reason.since_ns, ms(400));
}

// Issue 12 item 4: freshness by the age of the last valid answer of each kind.
SupervisorConfig inverter_config() {
  SupervisorConfig c = test_config();
  c.inverter_expected = true;
  c.inverter_readings_timeout_ns = 1000ms;
  c.inverter_heartbeat_timeout_ns = 2000ms;
  return c;
}

TEST(InverterFreshness, ReadingsAndHeartbeatsInTimeKeepTheStateNormal) {
  Rig rig = make_rig(inverter_config());
  Supervisor& s = rig.supervisor;
  for (int k = 0; k <= 50; ++k) {
    s.on_inverter_reading(ms(200 * k));
    if (k % 5 == 0) s.on_inverter_heartbeat(ms(200 * k));
  }
  EXPECT_EQ(s.next_deadline_ns(), ms(10000) + 1000ms);
  s.tick(ms(10999));
  EXPECT_EQ(s.state(), State::normal);
  EXPECT_FALSE(s.status().inverter_readings_stale);
}

TEST(InverterFreshness, ReadingsOlderThanTheBoundAreDangerousWhileHeartbeatsStillWork) {
  Rig rig = make_rig(inverter_config());
  Supervisor& s = rig.supervisor;
  s.on_inverter_reading(ms(100));
  // The half-dead inverter: heartbeats acknowledged, reads unanswered; failures interleave with
  // successes of the other kind, which must not reset anything.
  for (int k = 1; k <= 5; ++k) {
    s.on_inverter_heartbeat(ms(100 + 200 * k));
    s.on_inverter_link(false, ms(150 + 200 * k));
  }
  EXPECT_EQ(s.state(), State::dangerous);  // 5 link failures also count; freshness is checked next
  Rig fresh_rig = make_rig(inverter_config());
  Supervisor& f = fresh_rig.supervisor;
  f.on_inverter_reading(ms(100));
  f.on_inverter_heartbeat(ms(600));
  EXPECT_EQ(f.next_deadline_ns(), ms(1100));
  EXPECT_TRUE(f.tick(ms(1099)).empty());
  EXPECT_EQ(f.state(), State::normal);
  auto d = copy(f.tick(ms(1100)));
  EXPECT_EQ(f.state(), State::dangerous);
  const Decision* off = find(d, DecisionKind::inverter_off);
  ASSERT_NE(off, nullptr);
  EXPECT_EQ(off->reason.rule, RuleKind::inverter_stale);
  EXPECT_DOUBLE_EQ(off->reason.measured, 1.0);
  EXPECT_DOUBLE_EQ(off->reason.threshold, 1.0);
  EXPECT_EQ(off->reason.since_ns, ms(100));
  EXPECT_TRUE(f.status().inverter_readings_stale);
  EXPECT_EQ(f.status().inverter_last_reading_ns, ms(100));
  EXPECT_EQ(f.describe(off->reason, clock_at(ms(1100))),
            "inverter readings stale: no valid reading for 1.0 s (limit 1.0 s, dangerous) since 2026-12-07 "
            "01:36:42");
}

TEST(InverterFreshness, AnUnacknowledgedHeartbeatIsDangerousWhileReadsStillWork) {
  Rig rig = make_rig(inverter_config());
  Supervisor& s = rig.supervisor;
  s.on_inverter_heartbeat(ms(0));
  for (int k = 1; k < 10; ++k) s.on_inverter_reading(ms(200 * k));  // up to 1.8 s
  EXPECT_EQ(s.state(), State::normal);
  auto d = copy(s.on_inverter_reading(ms(2000)));
  EXPECT_EQ(s.state(), State::dangerous);
  const Decision* off = find(d, DecisionKind::inverter_off);
  ASSERT_NE(off, nullptr);
  EXPECT_EQ(off->reason.rule, RuleKind::inverter_heartbeat);
  EXPECT_DOUBLE_EQ(off->reason.measured, 2.0);
}

TEST(InverterFreshness, CountsFromTheFirstInputWhenNothingEverArrives) {
  Rig rig = make_rig(inverter_config());
  Supervisor& s = rig.supervisor;
  s.on_inverter_link(false, ms(500));  // e.g. a connect that failed
  EXPECT_EQ(s.next_deadline_ns(), ms(1500));
  auto d = copy(s.tick(ms(1500)));
  EXPECT_EQ(s.state(), State::dangerous);
  ASSERT_NE(find(d, DecisionKind::inverter_off), nullptr);
  EXPECT_EQ(find(d, DecisionKind::inverter_off)->reason.rule, RuleKind::inverter_stale);
}

TEST(InverterFreshness, TheCauseClearsWhenBothKindsAreFreshAgainSoAResetIsAccepted) {
  Rig rig = make_rig(inverter_config());
  Supervisor& s = rig.supervisor;
  s.on_inverter_reading(ms(0));
  s.on_inverter_heartbeat(ms(0));
  s.tick(ms(1000));
  EXPECT_EQ(s.active_causes().size(), 1u);
  s.on_inverter_reading(ms(1200));
  EXPECT_TRUE(s.active_causes().empty());
  s.on_inverter_reading(ms(1900));
  s.tick(ms(2000));  // the heartbeat is now 2 s old: dangerous again, for the other kind
  ASSERT_EQ(s.active_causes().size(), 1u);
  EXPECT_EQ(s.active_causes()[0].rule, RuleKind::inverter_heartbeat);
  s.on_inverter_heartbeat(ms(3100));
  s.on_inverter_reading(ms(3100));
  EXPECT_TRUE(s.active_causes().empty());
  auto d = copy(s.on_operator_reset(ms(3200)));
  EXPECT_NE(find(d, DecisionKind::reset_accepted), nullptr);
}

TEST(InverterFreshness, NotCheckedWhenNoInverterIsExpected) {
  Rig rig = make_rig();  // inverter_expected false
  rig.supervisor.on_inverter_reading(ms(0));
  rig.supervisor.tick(sec(100));
  EXPECT_EQ(rig.supervisor.state(), State::normal);
}

TEST(Insulation, AnInsulationFaultIsDangerousAtOnce) {
  Rig rig = make_rig();
  auto d = copy(rig.supervisor.on_insulation_fault(true, ms(7)));
  EXPECT_EQ(rig.supervisor.state(), State::dangerous);
  EXPECT_EQ(find(d, DecisionKind::inverter_off)->reason.rule, RuleKind::insulation_fault);
}

TEST(BoardFault, TheBoardOpeningTheRelaysItselfGivesSafeWithThatCause) {
  Rig rig = make_rig();
  Supervisor& s = rig.supervisor;
  rig.sample(rig.pack_current, ms(0), 0.5);
  auto d = copy(s.on_board_fault(BoardFault::heartbeat_timeout, ms(10)));
  EXPECT_EQ(s.state(), State::safe);
  const Decision* off = find(d, DecisionKind::inverter_off);
  ASSERT_NE(off, nullptr);
  EXPECT_EQ(off->reason.rule, RuleKind::board_fault);
  EXPECT_NE(find(d, DecisionKind::contactors_open), nullptr);
  EXPECT_EQ(s.status().state_reason.rule, RuleKind::board_fault);
  EXPECT_EQ(s.describe(s.status().state_reason, clock_at(ms(10))),
            "board opened the relays: heartbeat timeout (dangerous) since 2026-12-07 01:36:42");
  // Latched while the board still holds them open against the command; a reset is refused.
  d = copy(s.on_operator_reset(ms(20)));
  ASSERT_NE(find(d, DecisionKind::reset_refused), nullptr);
  EXPECT_EQ(find(d, DecisionKind::reset_refused)->reason.rule, RuleKind::board_fault);
  // The read-back agrees again: the cause clears, SAFE stays until the operator resets.
  EXPECT_TRUE(copy(s.on_board_fault(BoardFault::none, ms(30))).empty());
  EXPECT_EQ(s.state(), State::safe);
  EXPECT_TRUE(s.active_causes().empty());
  d = copy(s.on_operator_reset(ms(40)));
  EXPECT_NE(find(d, DecisionKind::reset_accepted), nullptr);
}

TEST(BoardFault, EveryCauseHasItsOwnText) {
  EXPECT_EQ(to_string(BoardFault::ground_fault), "board opened the relays: ground-fault input");
  EXPECT_EQ(to_string(BoardFault::watchdog_reset), "board opened the relays: watchdog reset");
  EXPECT_EQ(to_string(BoardFault::reset), "board opened the relays: board reset");
  EXPECT_EQ(to_string(BoardFault::output_mismatch), "board output does not follow the command (read-back)");
  Rig rig = make_rig();
  rig.supervisor.on_board_fault(BoardFault::output_mismatch, ms(5));
  ASSERT_EQ(rig.supervisor.active_causes().size(), 1u);
  EXPECT_EQ(static_cast<BoardFault>(static_cast<int>(rig.supervisor.active_causes()[0].measured)),
            BoardFault::output_mismatch);
}

TEST(Time, TimeGoingBackwardsIsClampedToTheLatestTimeSeen) {
  Rig rig = make_rig();
  rig.sample(rig.cells[0], ms(100), 3.7);
  auto d = rig.sample(rig.cells[0], ms(50), 4.25);
  EXPECT_EQ(find(d, DecisionKind::inverter_off)->time_ns, ms(100));
}

}  // namespace
}  // namespace cellguard::safety
