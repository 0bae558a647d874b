#include "sim/scenario.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <string>

// toml++ header-only and without exceptions, so a malformed file is a value here, not a throw
// (the packaged shared library is built with exceptions; this file does not link it).
#define TOML_HEADER_ONLY 1
#define TOML_EXCEPTIONS 0
#include <toml++/toml.h>

namespace cellguard::sim {
namespace {

Error step_error(std::string_view source, std::size_t step, const std::string& why) {
  return Error(ErrorCode::parse_error, std::string(source) + ": step " + std::to_string(step) + ": " + why);
}

}  // namespace

Result<std::vector<ScenarioStep>> parse_scenario(std::string_view text, std::string_view source_name) {
  if (text.size() > kMaxScenarioBytes)
    return Error(ErrorCode::parse_error, std::string(source_name) + ": larger than 1 MiB");
  toml::parse_result parsed = toml::parse(text, source_name);
  if (!parsed) {
    const toml::parse_error& error = parsed.error();
    return Error(ErrorCode::parse_error,
                 std::string(source_name) + ":" + std::to_string(error.source().begin.line) + ":" +
                     std::to_string(error.source().begin.column) + ": " + std::string(error.description()));
  }
  const toml::table& root = parsed.table();
  for (const auto& [key, _] : root)
    if (key.str() != "step")
      return Error(ErrorCode::parse_error, std::string(source_name) + ": unknown top-level key '" +
                                               std::string(key.str()) + "' (expected [[step]])");
  std::vector<ScenarioStep> steps;
  const toml::array* array = root["step"].as_array();
  if (root.contains("step") && array == nullptr)
    return Error(ErrorCode::parse_error,
                 std::string(source_name) + ": 'step' must be an array of tables ([[step]])");
  if (array == nullptr) return steps;
  if (array->size() > kMaxScenarioSteps)
    return Error(ErrorCode::parse_error, std::string(source_name) + ": more than 10000 steps");
  std::size_t number = 0;
  for (const toml::node& node : *array) {
    ++number;
    const toml::table* table = node.as_table();
    if (table == nullptr) return step_error(source_name, number, "not a table");
    ScenarioStep step;
    std::optional<double> at_s = (*table)["at_s"].value<double>();
    if (!at_s || !std::isfinite(*at_s) || *at_s < 0)
      return step_error(source_name, number, "needs at_s >= 0");
    step.at_s = *at_s;
    std::optional<std::string> fault = (*table)["fault"].value<std::string>();
    if (!fault || fault->empty()) return step_error(source_name, number, "needs fault = \"<kind>\"");
    step.command.kind = *fault;
    for (const auto& [key, value] : *table) {
      const std::string name(key.str());
      if (name == "at_s" || name == "fault") continue;
      if (const auto* b = value.as_boolean()) {
        step.command.numbers[name] = b->get() ? 1.0 : 0.0;
      } else if (auto number_value = value.value<double>()) {
        step.command.numbers[name] = *number_value;
      } else {
        return step_error(source_name, number, "parameter " + name + " must be a number or a boolean");
      }
    }
    steps.push_back(std::move(step));
  }
  std::stable_sort(steps.begin(), steps.end(),
                   [](const ScenarioStep& a, const ScenarioStep& b) { return a.at_s < b.at_s; });
  return steps;
}

std::vector<ScenarioStep> ScenarioPlayer::due(double now_s) {
  std::vector<ScenarioStep> out;
  while (next_ < steps_.size() && steps_[next_].at_s <= now_s) out.push_back(steps_[next_++]);
  return out;
}

}  // namespace cellguard::sim
