// The simulator's control protocol: JSON lines over a local Unix socket (`cellguard sim ctl`).
//
// One request per line (at most kMaxControlLineBytes, JSON nesting at most kMaxControlDepth), one
// response line per request, always an object with "ok":
//   {"cmd":"fault","fault":"cell_drift","module":3,"cell":5,"rate_v_per_s":0.01}  -> {"ok":true}
//   {"cmd":"status"}   -> {"ok":true,"status":{"time_s":..,"pack_voltage_v":..,"modules":[..],..}}
//   {"cmd":"faults"}   -> {"ok":true,"faults":["ambient","bus_error_storm",..]}
//   {"cmd":"drive","contactors":true,"precharge":false,"pump":true,"fan":true,"current_a":-50}
//                      -> {"ok":true}  (drives the pack's inputs directly, for tests and demos
//                         without the board or inverter; any subset of the fields)
//   anything else      -> {"ok":false,"error":"..."}
// Fault parameters are the request's other members (numbers, booleans as 0/1), see faults.h.
//
// Pure: a line and the simulated time in, a line out. Thread safety: none (loop thread).
#pragma once

#include <cstddef>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "sim/canopen_modules.h"
#include "sim/faults.h"
#include "sim/pack_model.h"

namespace cellguard::sim {

inline constexpr std::size_t kMaxControlLineBytes = 4096;
inline constexpr int kMaxControlDepth = 4;

// A fault request's members as a FaultCommand (everything but "cmd" and "fault").
Result<FaultCommand> fault_from_json(const nlohmann::json& request);

// The pack, modules and faults as a JSON object (the "status" of the status command).
nlohmann::json status_json(const PackModel& pack, const CanopenModules& modules,
                           const FaultDispatcher& faults);

class ControlHandler {
 public:
  ControlHandler(PackModel& pack, CanopenModules& modules, FaultDispatcher& faults)
      : pack_(pack), modules_(modules), faults_(faults) {}

  // A device adds its part of the status under `name` (e.g. "board", "inverter").
  void add_status(std::string name, std::function<nlohmann::json()> provider);

  // Handles one request line (without its newline) at simulated time now_s.
  std::string handle(std::string_view line, double now_s);

 private:
  PackModel& pack_;
  CanopenModules& modules_;
  FaultDispatcher& faults_;
  std::vector<std::pair<std::string, std::function<nlohmann::json()>>> status_providers_;
};

}  // namespace cellguard::sim
