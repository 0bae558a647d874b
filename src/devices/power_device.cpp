#include "devices/power_device.h"

namespace cellguard::devices {

std::string_view to_string(InverterMode mode) {
  switch (mode) {
    case InverterMode::off: return "off";
    case InverterMode::power: return "power";
    case InverterMode::current: return "current";
    case InverterMode::voltage: return "voltage";
  }
  return "?";
}

std::string_view to_string(InverterPhase phase) {
  switch (phase) {
    case InverterPhase::connecting: return "connecting";
    case InverterPhase::starting: return "starting";
    case InverterPhase::running: return "running";
    case InverterPhase::startup_failed: return "startup_failed";
    case InverterPhase::stopped: return "stopped";
  }
  return "?";
}

std::string_view to_string(InverterEvent::Kind kind) {
  switch (kind) {
    case InverterEvent::Kind::connected: return "connected";
    case InverterEvent::Kind::disconnected: return "disconnected";
    case InverterEvent::Kind::startup_step: return "startup_step";
    case InverterEvent::Kind::startup_done: return "startup_done";
    case InverterEvent::Kind::startup_failed: return "startup_failed";
    case InverterEvent::Kind::command_written: return "command_written";
    case InverterEvent::Kind::command_failed: return "command_failed";
  }
  return "?";
}

}  // namespace cellguard::devices
