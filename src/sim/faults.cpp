#include "sim/faults.h"

#include <algorithm>
#include <cmath>

namespace cellguard::sim {
namespace {

constexpr std::string_view kBuiltInKinds[] = {
    "ambient",          "bus_error_storm",  "cell_drift",     "clear",
    "insulation_fault", "module_frozen",    "module_garbage", "module_overtemp",
    "module_silent",    "module_truncated", "pump_failure",
};

bool is_built_in(std::string_view kind) {
  return std::find(std::begin(kBuiltInKinds), std::end(kBuiltInKinds), kind) != std::end(kBuiltInKinds);
}

bool is_module_flag(std::string_view kind) {
  return kind == "module_silent" || kind == "module_frozen" || kind == "module_garbage" ||
         kind == "module_truncated";
}

Error invalid(const FaultCommand& command, const std::string& why) {
  return Error(ErrorCode::invalid_argument, "fault " + command.kind + ": " + why);
}

}  // namespace

double FaultCommand::number(std::string_view name, double fallback) const {
  auto it = numbers.find(std::string(name));
  return it == numbers.end() ? fallback : it->second;
}

Result<void> FaultDispatcher::register_handler(std::string kind, Handler handler,
                                               std::function<void()> clear) {
  if (kind.empty() || is_built_in(kind) || !handler)
    return Error(ErrorCode::invalid_argument, "cannot register fault kind '" + kind + "'");
  registered_[std::move(kind)] = Registered{std::move(handler), std::move(clear)};
  return success();
}

std::vector<std::string> FaultDispatcher::kinds() const {
  std::vector<std::string> all(std::begin(kBuiltInKinds), std::end(kBuiltInKinds));
  for (const auto& [kind, _] : registered_) all.push_back(kind);
  std::sort(all.begin(), all.end());
  return all;
}

Result<void> FaultDispatcher::check_module(const FaultCommand& command) const {
  if (!command.has("module")) return invalid(command, "needs module=<node id>");
  const double module = command.number("module", 0);
  if (module != std::floor(module) || pack_.module(static_cast<int>(module)) == nullptr)
    return invalid(command, "module " + std::to_string(module) + " is not present");
  return success();
}

Result<void> FaultDispatcher::validate(const FaultCommand& command) const {
  for (const auto& [name, value] : command.numbers)
    if (!std::isfinite(value)) return invalid(command, "parameter " + name + " is not a finite number");
  if (registered_.count(command.kind)) return success();  // the device checks its own parameters
  if (!is_built_in(command.kind)) return Error(ErrorCode::not_found, "unknown fault '" + command.kind + "'");
  if (command.kind == "cell_drift") {
    if (auto ok = check_module(command); !ok) return ok;
    const double cell = command.number("cell", 0);
    const ModuleState* module = pack_.module(static_cast<int>(command.number("module", 0)));
    if (cell < 1 || cell > kCellChannels || cell != std::floor(cell) ||
        !module->cells[static_cast<std::size_t>(cell) - 1].populated)
      return invalid(command, "needs cell=<populated channel 1..14>");
    if (command.number("rate_v_per_s", 0.01) == 0) return invalid(command, "rate_v_per_s must not be 0");
  } else if (command.kind == "module_overtemp" || is_module_flag(command.kind)) {
    if (auto ok = check_module(command); !ok) return ok;
    if (command.number("rate_c_per_s", 0.2) <= 0) return invalid(command, "rate_c_per_s must be > 0");
  } else if (command.kind == "bus_error_storm") {
    if (command.number("duration_s", 5) < 0 || command.number("rate_per_s", 1000) < 0 ||
        command.number("rate_per_s", 1000) > 100000)
      return invalid(command, "needs duration_s >= 0 and 0 <= rate_per_s <= 100000");
  } else if (command.kind == "ambient") {
    const double value_c = command.number("value_c", NAN);
    if (!(value_c >= -40 && value_c <= 80)) return invalid(command, "needs value_c in -40..80");
  }
  return success();
}

Result<void> FaultDispatcher::apply(const FaultCommand& command, double now_s) {
  if (auto ok = validate(command); !ok) return ok;
  if (auto it = registered_.find(command.kind); it != registered_.end()) {
    if (auto ok = it->second.handler(command); !ok) return ok;
    history_.push_back(command.kind);
    return success();
  }
  const int module = static_cast<int>(command.number("module", 0));
  const bool on = command.number("on", 1) != 0;
  if (command.kind == "cell_drift") {
    const double rate = command.number("rate_v_per_s", 0.01);
    pack_.drift_cell(module, static_cast<int>(command.number("cell", 0)), rate,
                     command.number("target_v", rate > 0 ? 4.30 : 2.50));
  } else if (command.kind == "module_overtemp") {
    pack_.overheat_module(module, command.number("rate_c_per_s", 0.2), command.number("target_c", 70));
  } else if (is_module_flag(command.kind)) {
    ModuleFaults faults = *modules_.faults(module);
    if (command.kind == "module_silent") faults.silent = on;
    if (command.kind == "module_frozen") faults.frozen = on;
    if (command.kind == "module_garbage") faults.garbage = on;
    if (command.kind == "module_truncated") faults.truncated = on;
    modules_.set_faults(module, faults);
  } else if (command.kind == "bus_error_storm") {
    storm_.until_s = now_s + command.number("duration_s", 5);
    storm_.rate_per_s = command.number("rate_per_s", 1000);
  } else if (command.kind == "pump_failure") {
    pack_.set_pump_failed(on);
  } else if (command.kind == "insulation_fault") {
    pack_.set_insulation_fault(on);
  } else if (command.kind == "ambient") {
    pack_.set_ambient_c(command.number("value_c", 22));
  } else if (command.kind == "clear") {
    pack_.clear_faults();
    modules_.clear_faults();
    storm_ = {};
    for (auto& [_, registered] : registered_)
      if (registered.clear) registered.clear();
  }
  history_.push_back(command.kind);
  return success();
}

}  // namespace cellguard::sim
