// The edge's hands: one supervisor decision in, the command to the inverter or the outputs out, at
// once and before anything is reported (edge.cpp reports after the whole batch acted).
//
// The switch over safety::DecisionKind is exhaustive and built with -Wswitch-enum (CMakeLists.txt):
// a new decision kind does not compile until it is handled here, even if only to say it needs no
// command.
#pragma once

#include <functional>
#include <string>

#include "devices/outputs.h"
#include "devices/power_device.h"
#include "edge/edge_time.h"
#include "safety/safety.h"

namespace cellguard::edge {

// The power device as the actuator and the schedule driver command it (devices/power_device.h: the
// configured model in the edge, a fake in tests).
using InverterCommands = devices::PowerCommands;

// What one decision did.
struct Actuation {
  bool command = false;  // the decision is a command to a device (inverter, relays, pump, fan)
  MonoTime at_ns{};      // when it was issued
  std::string error;     // empty: issued (or nothing to issue)
};

// Whether a decision kind commands a device (its event carries the frame-to-action latency).
bool is_command(safety::DecisionKind kind);

class Actuator {
 public:
  // The schedule's side of a nudge: a nudge replaces the schedule's setpoint until it ends.
  struct NudgeHooks {
    std::function<void()> begin;        // the inverter runs a nudge or hold setpoint now
    std::function<void(MonoTime)> end;  // the schedule's setpoint resumes
  };

  // Devices may be null (disabled in the configuration): their commands are then skipped.
  Actuator(devices::Outputs* outputs, InverterCommands* inverter, NudgeHooks nudges, const Clock& clock)
      : outputs_(outputs), inverter_(inverter), nudges_(std::move(nudges)), clock_(&clock) {}

  Actuation actuate(const safety::Decision& decision);

 private:
  Result<void> switch_outputs(std::span<const devices::Output> which, bool on);

  devices::Outputs* outputs_;
  InverterCommands* inverter_;
  NudgeHooks nudges_;
  const Clock* clock_;  // "now" of the commands
};

}  // namespace cellguard::edge
