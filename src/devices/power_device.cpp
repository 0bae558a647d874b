#include "devices/power_device.h"

#include "devices/inverter_client.h"
#include "devices/sunspec_device.h"

namespace cellguard::devices {

std::string_view to_string(InverterMode mode) {
  switch (mode) {
    case InverterMode::off:
      return "off";
    case InverterMode::power:
      return "power";
    case InverterMode::current:
      return "current";
    case InverterMode::voltage:
      return "voltage";
  }
  return "?";
}

std::string_view to_string(InverterPhase phase) {
  switch (phase) {
    case InverterPhase::connecting:
      return "connecting";
    case InverterPhase::starting:
      return "starting";
    case InverterPhase::running:
      return "running";
    case InverterPhase::startup_failed:
      return "startup_failed";
    case InverterPhase::stopped:
      return "stopped";
  }
  return "?";
}

std::string_view to_string(InverterEvent::Kind kind) {
  switch (kind) {
    case InverterEvent::Kind::connected:
      return "connected";
    case InverterEvent::Kind::disconnected:
      return "disconnected";
    case InverterEvent::Kind::startup_step:
      return "startup_step";
    case InverterEvent::Kind::startup_done:
      return "startup_done";
    case InverterEvent::Kind::startup_failed:
      return "startup_failed";
    case InverterEvent::Kind::command_written:
      return "command_written";
    case InverterEvent::Kind::command_failed:
      return "command_failed";
  }
  return "?";
}

std::string_view to_string(PowerDeviceModel model) {
  switch (model) {
    case PowerDeviceModel::rig:
      return "rig";
    case PowerDeviceModel::sunspec:
      return "sunspec";
  }
  return "?";
}

std::unique_ptr<PowerDevice> make_power_device(PowerDeviceModel model, asio::io_context& loop,
                                               const InverterClientConfig& config, const Clock& clock) {
  switch (model) {
    case PowerDeviceModel::rig:
      return std::make_unique<InverterClient>(loop, config, clock);
    case PowerDeviceModel::sunspec:
      return make_sunspec_device(loop, config, clock);
  }
  return nullptr;
}

}  // namespace cellguard::devices
