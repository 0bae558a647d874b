#include "edge/actuator.h"

#include <array>

namespace cellguard::edge {
namespace {

// The relays of the contactor and precharge circuit, opened together.
constexpr std::array<devices::Output, 3> kContactorRelays = {devices::Output::relay1, devices::Output::relay2,
                                                             devices::Output::relay3};

devices::Output relay_output(int relay) {
  switch (relay) {
    case 1:
      return devices::Output::relay1;
    case 2:
      return devices::Output::relay2;
    default:
      return devices::Output::relay3;
  }
}

}  // namespace

bool is_command(safety::DecisionKind kind) {
  using K = safety::DecisionKind;
  switch (kind) {
    case K::inverter_off:
    case K::inverter_nudge_charge:
    case K::inverter_nudge_discharge:
    case K::inverter_hold:
    case K::contactors_open:
    case K::cooling_on:
    case K::cooling_off:
    case K::relay_set:
      return true;
    case K::state_changed:
    case K::inverter_nudge_end:  // resumes the schedule; its setpoint is not a safety action
    case K::precharge_complete:
    case K::precharge_retry:
    case K::precharge_lockout:
    case K::start_refused:
    case K::reset_accepted:
    case K::reset_refused:
    case K::module_joined:
      return false;
  }
  return false;
}

Result<void> Actuator::switch_outputs(std::span<const devices::Output> which, bool on) {
  // Several outputs in one command (one board line where it fits).
  std::array<std::optional<bool>, devices::kOutputCount> states{};
  for (devices::Output output : which) states[static_cast<std::size_t>(output)] = on;
  return outputs_->set_all(states);
}

Actuation Actuator::actuate(const safety::Decision& d) {
  using K = safety::DecisionKind;
  using devices::Output;
  Actuation acted;
  acted.command = is_command(d.kind);
  auto issue = [&](const Result<void>& result) {
    if (!result) acted.error = result.error().message;
  };
  // No default: every kind is named, so a new one fails to compile (-Wswitch-enum) until handled.
  switch (d.kind) {
    case K::inverter_off:
      if (inverter_) inverter_->command_off(clock_->mono_now());
      break;
    case K::inverter_nudge_charge:
    case K::inverter_nudge_discharge:
    case K::inverter_hold:
      if (nudges_.begin) nudges_.begin();
      if (inverter_)
        inverter_->command_setpoint(devices::InverterMode::current, d.setpoint_a, clock_->mono_now());
      break;
    case K::inverter_nudge_end:
      if (nudges_.end) nudges_.end(clock_->mono_now());
      break;
    case K::contactors_open:
      if (outputs_) issue(switch_outputs(kContactorRelays, false));
      break;
    case K::cooling_on:
    case K::cooling_off:
      if (outputs_) issue(switch_outputs(std::array{Output::pump, Output::fan}, d.kind == K::cooling_on));
      break;
    case K::relay_set:
      if (outputs_) issue(outputs_->set(relay_output(d.relay), d.closed));
      break;
    // Reports only: the edge's reporting pass (events, schedule, start-up SDO) handles them.
    case K::state_changed:
    case K::precharge_complete:
    case K::precharge_retry:
    case K::precharge_lockout:
    case K::start_refused:
    case K::reset_accepted:
    case K::reset_refused:
    case K::module_joined:
      break;
  }
  acted.at_ns = clock_->mono_now();
  return acted;
}

}  // namespace cellguard::edge
