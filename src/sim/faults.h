// Fault injection for `cellguard sim` (issue 3, item 6): one command type, one dispatcher.
//
// A FaultCommand comes from a scenario file step (scenario.h) or live from the control socket
// (control_protocol.h); both go through FaultDispatcher::apply(). The dispatcher acts on the pack
// physics (cell drift, over-temperature, pump failure, insulation fault, ambient), on the CANopen
// modules (silent, frozen, garbage, truncated) and on the bus (error storm). Faults of the other
// simulated devices (inverter not answering, inverter fault bit, wrong readback, board unplugged)
// are registered by those devices with register_handler().
//
// Built-in kinds and their parameters (defaults in brackets):
//   cell_drift        module, cell (1..14), rate_v_per_s [0.01; negative drifts down],
//                     target_v [4.30 up, 2.50 down]
//   module_overtemp   module, rate_c_per_s [0.2], target_c [70]
//   module_silent     module, on [1]         module_frozen     module, on [1]
//   module_garbage    module, on [1]         module_truncated  module, on [1]
//   bus_error_storm   duration_s [5], rate_per_s [1000]   (error frames on the bus)
//   pump_failure      on [1]                 insulation_fault  on [1]
//   ambient           value_c
//   clear             (no parameters) every fault off, devices' too
//
// Pure: values and time in, state changes out; no I/O. Thread safety: none (loop thread).
#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "sim/canopen_modules.h"
#include "sim/pack_model.h"

namespace cellguard::sim {

struct FaultCommand {
  std::string kind;                       // e.g. "cell_drift"
  std::map<std::string, double> numbers;  // parameters; booleans as 0/1

  // The parameter or `fallback` if absent.
  double number(std::string_view name, double fallback) const;
  bool has(std::string_view name) const { return numbers.find(std::string(name)) != numbers.end(); }
};

// An error-frame storm on the bus (the shell sends error frames while it lasts).
struct BusStorm {
  double until_s = 0;     // simulated time the storm ends
  double rate_per_s = 0;  // error frames per simulated second
  bool active(double now_s) const { return now_s < until_s && rate_per_s > 0; }
};

class FaultDispatcher {
 public:
  // Returns an Error (invalid_argument) naming what is wrong with the command's parameters.
  using Handler = std::function<Result<void>(const FaultCommand&)>;

  FaultDispatcher(PackModel& pack, CanopenModules& modules) : pack_(pack), modules_(modules) {}
  FaultDispatcher(const FaultDispatcher&) = delete;
  FaultDispatcher& operator=(const FaultDispatcher&) = delete;

  // Adds a fault kind of another device (e.g. "inverter_silent"). `clear` is called by the
  // "clear" command. A built-in kind cannot be replaced.
  Result<void> register_handler(std::string kind, Handler handler, std::function<void()> clear = {});

  // Checks a command without applying it: known kind, present module, cell in range.
  Result<void> validate(const FaultCommand& command) const;
  // Applies a command at simulated time now_s.
  Result<void> apply(const FaultCommand& command, double now_s);

  const BusStorm& storm() const { return storm_; }
  // Every kind this dispatcher knows, built-in and registered, sorted.
  std::vector<std::string> kinds() const;
  // Commands applied so far, newest last (for `sim ctl status`).
  const std::vector<std::string>& history() const { return history_; }

 private:
  struct Registered {
    Handler handler;
    std::function<void()> clear;
  };
  Result<void> check_module(const FaultCommand& command) const;

  PackModel& pack_;
  CanopenModules& modules_;
  BusStorm storm_;
  std::map<std::string, Registered, std::less<>> registered_;
  std::vector<std::string> history_;
};

}  // namespace cellguard::sim
