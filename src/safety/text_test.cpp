// Issue 13 item 6: every reason text carries units, names and wall-clock times (never the
// supervisor's monotonic clock). Exact strings, one test per kind of reason.
#include <cctype>

#include "safety/test_support.h"
#include "support/monotonic_text.h"

namespace cellguard::safety {
namespace {

using namespace testing;

using cellguard::testing::has_monotonic_since;

TEST(ReasonText, TheMonotonicCheckFindsWhatItLooksFor) {
  EXPECT_TRUE(has_monotonic_since("dangerous limit_high BMU03 4.21 >= 4.2 since 14376.054 s"));
  EXPECT_TRUE(has_monotonic_since("x since 12 s)"));
  EXPECT_FALSE(
      has_monotonic_since("cell 5 of module 3: 4.21 V >= 4.20 V (dangerous) since 2026-12-07 01:36:42"));
  EXPECT_FALSE(has_monotonic_since("since 3 samples"));
}

const Decision& only(const std::vector<Decision>& d, DecisionKind kind) {
  const Decision* found = find(d, kind);
  EXPECT_NE(found, nullptr) << to_string(kind);
  static const Decision none;
  return found != nullptr ? *found : none;
}

SupervisorConfig quiet_config() {
  SupervisorConfig c = test_config();
  c.dangerous_silence_ns = 3600s;
  c.dangerous_sync_cycles = 1000;
  return c;
}

TEST(ReasonText, WallClockTextIsUtcToTheSecond) {
  EXPECT_EQ(wall_text(kWallAtZero), "2026-12-07 01:36:42");
  EXPECT_EQ(wall_text(kWallAtZero + 999ms), "2026-12-07 01:36:42");
  EXPECT_EQ(wall_text(WallTime()), "1970-01-01 00:00:00");
}

TEST(ReasonText, LimitsNameTheCellTheModuleTheUnitsTheLevelAndTheWallClockStart) {
  Rig rig = make_rig();
  rig.sample(rig.pack_current, ms(0), 30);
  auto d = rig.sample(rig.cells[4], ms(1000), 4.21);
  EXPECT_EQ(rig.supervisor.describe(only(d, DecisionKind::inverter_off).reason, clock_at(ms(1000))),
            "cell 5 of module 1: 4.21 V >= 4.20 V (dangerous) since 2026-12-07 01:36:43");
  Rig low = make_rig();
  d = low.sample(low.cells[0], ms(0), 2.79);
  EXPECT_EQ(low.supervisor.describe(only(d, DecisionKind::state_changed).reason, clock_at(ms(0))),
            "cell 1 of module 1: 2.79 V <= 2.80 V (warning) since 2026-12-07 01:36:42");
  d = low.sample(low.cells[0], ms(61'000), 3.5);
  EXPECT_EQ(low.supervisor.describe(only(d, DecisionKind::state_changed).reason, clock_at(ms(61'000))),
            "cell 1 of module 1: 3.50 V, back from below 2.80 V (cleared; since 2026-12-07 01:36:42)");
}

TEST(ReasonText, AChannelWithoutALabelIsNamedByItsSignal) {
  Rig rig = make_rig();
  auto d = rig.sample(rig.module_voltage, ms(0), 49.5);
  EXPECT_EQ(rig.supervisor.describe(only(d, DecisionKind::state_changed).reason, clock_at(ms(0))),
            "BMU01.CMA_Voltage: 49.5 V >= 49.0 V (dangerous) since 2026-12-07 01:36:42");
}

TEST(ReasonText, ASilentModuleSaysForHowLongAndHowManySyncCycles) {
  SupervisorConfig c = test_config();
  c.dangerous_silence_ns = 2s;  // the cycle rule comes first
  Rig rig = make_rig(c);
  rig.supervisor.on_module_pdo(1, ms(0));
  std::vector<Decision> d;
  for (int k = 1; k <= 11 && d.empty(); ++k) {
    auto got = copy(rig.supervisor.on_sync_sent(ms(100 * k)));
    for (const auto& x : got)
      if (x.kind == DecisionKind::inverter_off) d = got;
  }
  ASSERT_FALSE(d.empty());
  EXPECT_EQ(rig.supervisor.describe(only(d, DecisionKind::inverter_off).reason, clock_at(ms(1100))),
            "module 1 silent for 1.1 s (10 SYNC cycles, dangerous) since 2026-12-07 01:36:42");
  // The time rule: no SYNC at all, 1 s of silence.
  Rig quiet = make_rig();
  quiet.supervisor.on_module_pdo(1, ms(0));
  d = copy(quiet.supervisor.tick(sec(1)));
  EXPECT_EQ(quiet.supervisor.describe(only(d, DecisionKind::inverter_off).reason, clock_at(sec(1))),
            "module 1 silent for 1.0 s (limit 1.0 s, dangerous) since 2026-12-07 01:36:42");
}

TEST(ReasonText, BoardInverterInsulation) {
  SupervisorConfig c = quiet_config();
  c.board_expected = true;
  Rig board = make_rig(c);
  board.supervisor.tick(ms(0));
  auto d = copy(board.supervisor.tick(sec(3)));
  EXPECT_EQ(board.supervisor.describe(only(d, DecisionKind::inverter_off).reason, clock_at(sec(3))),
            "board silent for 3.0 s (limit 3.0 s, dangerous) since 2026-12-07 01:36:42");

  Rig inverter = make_rig();
  inverter.supervisor.on_inverter_link(false, ms(0));
  inverter.supervisor.on_inverter_link(false, ms(500));
  d = copy(inverter.supervisor.on_inverter_link(false, ms(1000)));
  EXPECT_EQ(inverter.supervisor.describe(only(d, DecisionKind::inverter_off).reason, clock_at(ms(1000))),
            "inverter link failed 3 times in a row (limit 3, dangerous) since 2026-12-07 01:36:42");

  Rig insulation = make_rig();
  d = copy(insulation.supervisor.on_insulation_fault(true, sec(2)));
  EXPECT_EQ(insulation.supervisor.describe(only(d, DecisionKind::inverter_off).reason, clock_at(sec(2))),
            "insulation fault (ground fault input, dangerous) since 2026-12-07 01:36:44");
}

TEST(ReasonText, PumpAndFan) {
  Rig rig = make_rig();
  auto d = rig.sample(rig.max_temperature, ms(0), 31);
  EXPECT_EQ(rig.supervisor.describe(only(d, DecisionKind::cooling_on), clock_at(ms(0))),
            "module 1 maximum temperature: 31.0 °C >= 30.0 °C: pump and fan on at 2026-12-07 01:36:42");
  d = rig.sample(rig.max_temperature, sec(60), 28.5);
  EXPECT_EQ(rig.supervisor.describe(only(d, DecisionKind::cooling_off), clock_at(sec(60))),
            "module 1 maximum temperature: 28.5 °C <= 29.0 °C: pump and fan off at 2026-12-07 01:37:42");
}

TEST(ReasonText, ContactorOpeningOnLowCurrentAndAfterTheMaximumDelay) {
  Rig rig = make_rig();
  rig.sample(rig.pack_current, ms(0), -20);
  rig.sample(rig.cells[0], ms(1000), 4.25);
  auto d = rig.sample(rig.pack_current, ms(1250), -0.4);
  EXPECT_EQ(rig.supervisor.describe(only(d, DecisionKind::contactors_open), clock_at(ms(1250))),
            "contactors opened: pack current 0.4 A < 5.0 A, 0.2 s after the trip at 2026-12-07 01:36:43");
  Rig loaded = make_rig();
  loaded.sample(loaded.pack_current, ms(0), 40);
  loaded.sample(loaded.cells[0], ms(0), 4.25);
  loaded.sample(loaded.pack_current, ms(1500), 40);  // still flowing, and fresh at the maximum delay
  d = copy(loaded.supervisor.tick(sec(2)));
  EXPECT_EQ(
      loaded.supervisor.describe(only(d, DecisionKind::contactors_open), clock_at(sec(2))),
      "contactors opened under load: pack current 40.0 A not below 5.0 A after the maximum delay of 2.0 s "
      "(emergency opening; trip at 2026-12-07 01:36:42)");
}

TEST(ReasonText, PrechargeStepsAndRelays) {
  Rig rig = make_rig(quiet_config());
  Supervisor& s = rig.supervisor;
  s.on_module_pdo(1, ms(0));
  rig.sample(rig.battery_voltage, ms(0), 360);
  auto d = copy(s.on_start_request(ms(0)));
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(s.describe(d[0], clock_at(ms(0))),
            "relay 2 (main negative) closed: precharge attempt 1 of 3 started at 2026-12-07 01:36:42");
  EXPECT_EQ(s.describe(d[1], clock_at(ms(0))),
            "relay 3 (precharge) closed: precharge attempt 1 of 3 started at 2026-12-07 01:36:42");
  d = rig.sample(rig.dc_link_voltage, ms(4000), 352.1);
  ASSERT_EQ(d.size(), 3u);
  EXPECT_EQ(s.describe(d[0].reason, clock_at(ms(4000))), "precharge reached 352.1 V of 360.0 V (98 %)");
  EXPECT_EQ(s.describe(d[1], clock_at(ms(4000))),
            "relay 3 (precharge) opened: precharge reached 352.1 V of 360.0 V (98 %)");
  EXPECT_EQ(s.describe(d[2], clock_at(ms(4000))),
            "contactors closed: precharge reached 352.1 V of 360.0 V (98 %)");

  SupervisorConfig c = quiet_config();
  c.precharge.max_attempts = 1;
  Rig failing = make_rig(c);
  failing.supervisor.on_module_pdo(1, ms(0));
  failing.sample(failing.battery_voltage, ms(0), 360);
  failing.supervisor.on_start_request(ms(0));
  failing.sample(failing.dc_link_voltage, sec(5), 200);
  d = copy(failing.supervisor.tick(sec(10)));
  EXPECT_EQ(failing.supervisor.describe(d[0], clock_at(sec(10))),
            "relay 3 (precharge) opened: precharge timed out after 10.0 s at 200.0 V of 360.0 V (56 %), "
            "needs within "
            "10.0 V (attempt started at 2026-12-07 01:36:42)");
  EXPECT_EQ(
      failing.supervisor.describe(only(d, DecisionKind::precharge_lockout), clock_at(sec(10))),
      "precharge failed 1 of 1 attempts: locked out until an operator reset (since 2026-12-07 01:36:52)");
}

TEST(ReasonText, OperatorRequestsModulesAndStops) {
  Rig rig = make_rig(quiet_config());
  Supervisor& s = rig.supervisor;
  auto d = copy(s.on_module_pdo(1, ms(0)));
  EXPECT_EQ(s.describe(only(d, DecisionKind::module_joined), clock_at(ms(0))),
            "module 1 joined (1 of 1 expected) at 2026-12-07 01:36:42");
  d = copy(s.on_operator_reset(sec(1)));
  EXPECT_EQ(s.describe(only(d, DecisionKind::reset_refused), clock_at(sec(1))),
            "reset refused: the state is NORMAL (since 2026-12-07 01:36:42)");

  SupervisorConfig two = quiet_config();
  two.expected_module_count = 2;
  Rig short_rig = make_rig(two);
  short_rig.supervisor.on_module_pdo(1, ms(0));
  d = copy(short_rig.supervisor.on_start_request(ms(10)));
  EXPECT_EQ(short_rig.supervisor.describe(only(d, DecisionKind::start_refused), clock_at(ms(10))),
            "start refused: 1 of 2 expected modules found");

  d = copy(s.on_stop_request(StopOrigin::terminate_signal, sec(2)));
  EXPECT_EQ(s.describe(only(d, DecisionKind::state_changed), clock_at(sec(2))),
            "state NORMAL -> DANGEROUS: stop requested (SIGTERM) at 2026-12-07 01:36:44");
  EXPECT_EQ(s.describe(only(d, DecisionKind::inverter_off).reason, clock_at(sec(2))),
            "stop requested (SIGTERM) at 2026-12-07 01:36:44");
  for (auto origin : {StopOrigin::interrupt_signal, StopOrigin::operator_command,
                      StopOrigin::configuration_error, StopOrigin::duration_elapsed}) {
    Reason r{RuleKind::stop_request,
             Level::dangerous,
             Quantity::cell_voltage,
             kNoChannel,
             0,
             0,
             0,
             MonoTime(),
             static_cast<std::uint8_t>(origin)};
    EXPECT_EQ(s.describe(r, clock_at(ms(0))),
              "stop requested (" + std::string(to_string(origin)) + ") at 2026-12-07 01:36:42");
  }
}

TEST(ReasonText, NoTextShowsTheMonotonicClock) {
  // A long-running edge: monotonic 14376 s. Every text of a busy scenario names wall-clock times only.
  const MonoTime t0 = sec(14376);
  Rig rig = make_rig();
  std::vector<std::string> texts;
  auto collect = [&](const std::vector<Decision>& d, MonoTime now) {
    for (const auto& x : d) {
      texts.push_back(rig.supervisor.describe(x, clock_at(now)));
      texts.push_back(rig.supervisor.describe(x.reason, clock_at(now)));
    }
  };
  rig.supervisor.on_module_pdo(1, t0);
  collect(rig.sample(rig.pack_current, t0, 12), t0);
  collect(rig.sample(rig.max_temperature, t0 + 10ms, 31), t0 + 10ms);
  collect(rig.sample(rig.cells[4], t0 + 20ms, 4.15), t0 + 20ms);
  collect(rig.sample(rig.cells[4], t0 + 30ms, 4.25), t0 + 30ms);
  collect(copy(rig.supervisor.tick(t0 + 3s)), t0 + 3s);
  for (const auto& c : rig.supervisor.status().causes)
    texts.push_back(rig.supervisor.describe(c, clock_at(t0 + 3s)));
  ASSERT_GE(texts.size(), 8u);
  for (const auto& text : texts) {
    EXPECT_FALSE(has_monotonic_since(text)) << text;
    EXPECT_EQ(text.find("14376"), std::string::npos) << text;
  }
}

}  // namespace
}  // namespace cellguard::safety
