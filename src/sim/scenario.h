// Scenario files for `cellguard sim --scenario FILE` (issue 3, item 6): timed fault steps in TOML.
//
//   # Cell 5 of module 3 drifts to 4.3 V from t = 10 s; everything clears at t = 120 s.
//   [[step]]
//   at_s = 10
//   fault = "cell_drift"
//   module = 3
//   cell = 5
//   rate_v_per_s = 0.01
//
//   [[step]]
//   at_s = 120
//   fault = "clear"
//
// Every key of a step other than `at_s` and `fault` is a parameter of the fault (see faults.h):
// numbers as numbers, booleans as 0/1. Times are simulated seconds from the start.
//
// Pure: text in, steps out. Limits: at most kMaxScenarioSteps steps, a file of kMaxScenarioBytes.
#pragma once

#include <cstddef>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "sim/faults.h"

namespace cellguard::sim {

inline constexpr std::size_t kMaxScenarioSteps = 10000;
inline constexpr std::size_t kMaxScenarioBytes = 1 << 20;

struct ScenarioStep {
  double at_s = 0;
  FaultCommand command;
};

// Parses scenario text; steps come back sorted by time (stable for equal times). Errors
// (parse_error) name the source and the step: "scenario.toml: step 3: at_s must be >= 0".
Result<std::vector<ScenarioStep>> parse_scenario(std::string_view text, std::string_view source_name);

// Plays steps in order as simulated time advances.
class ScenarioPlayer {
 public:
  explicit ScenarioPlayer(std::vector<ScenarioStep> steps) : steps_(std::move(steps)) {}
  // Steps due at or before now_s and not yet played, in order.
  std::vector<ScenarioStep> due(double now_s);
  bool finished() const { return next_ >= steps_.size(); }
  std::size_t size() const { return steps_.size(); }

 private:
  std::vector<ScenarioStep> steps_;
  std::size_t next_ = 0;
};

}  // namespace cellguard::sim
