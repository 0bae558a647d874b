// The actuator: each decision kind to its command, nothing for the report-only kinds.
#include "edge/actuator.h"

#include <gtest/gtest.h>

#include <vector>

namespace cellguard::edge {
namespace {

const ManualClock fixed_clock{MonoTime::from_ns(42)};

struct Commands final : InverterCommands {
  void command_off(MonoTime at) override { calls.push_back("off@" + std::to_string(at.ns())); }
  void command_setpoint(devices::InverterMode mode, double setpoint, MonoTime) override {
    calls.push_back(std::string(devices::to_string(mode)) + " " + std::to_string(static_cast<int>(setpoint)));
  }
  std::vector<std::string> calls;
};

struct Outputs final : devices::Outputs {
  Result<void> set(devices::Output output, bool on) override {
    if (fail) return Error(ErrorCode::io_error, "board not connected");
    calls.push_back(std::string(devices::to_string(output)) + (on ? " on" : " off"));
    return success();
  }
  Result<void> set_all(const std::array<std::optional<bool>, devices::kOutputCount>& states) override {
    for (std::size_t i = 0; i < states.size(); ++i)
      if (states[i]) {
        if (auto ok = set(static_cast<devices::Output>(i), *states[i]); !ok) return ok;
      }
    return success();
  }
  Result<void> refresh() override { return success(); }
  bool commanded(devices::Output) const override { return false; }
  std::string describe() const override { return "test"; }
  std::vector<std::string> calls;
  bool fail = false;
};

safety::Decision decision(safety::DecisionKind kind) {
  safety::Decision d;
  d.kind = kind;
  return d;
}

TEST(EdgeActuator, CommandsGoToTheirDevices) {
  Commands inverter;
  Outputs outputs;
  int nudges_begun = 0;
  std::vector<MonoTime> nudges_ended;
  Actuator actuator(&outputs, &inverter,
                    {[&] { ++nudges_begun; }, [&](MonoTime t) { nudges_ended.push_back(t); }}, fixed_clock);
  using K = safety::DecisionKind;
  Actuation a = actuator.actuate(decision(K::inverter_off));
  EXPECT_TRUE(a.command);
  EXPECT_EQ(a.at_ns, MonoTime::from_ns(42));
  auto nudge = decision(K::inverter_nudge_charge);
  nudge.setpoint_a = -5;
  actuator.actuate(nudge);
  EXPECT_EQ(nudges_begun, 1);
  a = actuator.actuate(decision(K::inverter_nudge_end));
  EXPECT_FALSE(a.command);
  EXPECT_EQ(nudges_ended, std::vector<MonoTime>{MonoTime::from_ns(42)});
  EXPECT_EQ(inverter.calls, (std::vector<std::string>{"off@42", "current -5"}));

  actuator.actuate(decision(K::contactors_open));
  EXPECT_EQ(outputs.calls, (std::vector<std::string>{"relay1 off", "relay2 off", "relay3 off"}));
  outputs.calls.clear();
  actuator.actuate(decision(K::cooling_on));
  EXPECT_EQ(outputs.calls, (std::vector<std::string>{"pump on", "fan on"}));
  outputs.calls.clear();
  auto relay = decision(K::relay_set);
  relay.relay = 2;
  relay.closed = true;
  actuator.actuate(relay);
  EXPECT_EQ(outputs.calls, (std::vector<std::string>{"relay2 on"}));
}

TEST(EdgeActuator, ReportOnlyKindsCommandNothing) {
  Commands inverter;
  Outputs outputs;
  Actuator actuator(&outputs, &inverter, {}, fixed_clock);
  using K = safety::DecisionKind;
  for (K kind : {K::state_changed, K::precharge_complete, K::precharge_retry, K::precharge_lockout,
                 K::start_refused, K::reset_accepted, K::reset_refused, K::module_joined}) {
    const Actuation a = actuator.actuate(decision(kind));
    EXPECT_FALSE(a.command) << safety::to_string(kind);
    EXPECT_FALSE(is_command(kind));
  }
  EXPECT_TRUE(inverter.calls.empty());
  EXPECT_TRUE(outputs.calls.empty());
}

// A command the driver refuses is reported with the decision, not lost; missing devices are skipped.
TEST(EdgeActuator, RefusedCommandCarriesTheErrorAndMissingDevicesAreSkipped) {
  Outputs outputs;
  outputs.fail = true;
  Actuator actuator(&outputs, nullptr, {}, fixed_clock);
  const Actuation a = actuator.actuate(decision(safety::DecisionKind::contactors_open));
  EXPECT_TRUE(a.command);
  EXPECT_EQ(a.error, "board not connected");
  Actuator none(nullptr, nullptr, {}, fixed_clock);
  EXPECT_TRUE(none.actuate(decision(safety::DecisionKind::inverter_off)).error.empty());
}

}  // namespace
}  // namespace cellguard::edge
