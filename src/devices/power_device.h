// The seam for power devices (the DC converter that charges and discharges the pack): what the edge
// sees of any of them, whatever its register map. Two models implement it:
//   - rig:     the rig's 60 kW converter with its own Modbus map (inverter_client.h)
//   - sunspec: any device with the SunSpec models 1, 103, 124 and 802 (sunspec_device.h)
// make_power_device() builds the configured one; the edge holds a PowerDevice and never names a model.
//
// Contract (every model): the calls return at once (I/O runs on the device's own worker thread);
// every handler runs on the loop's io_context thread. Readings come with the caller's clock.
// Freshness: a valid reading and an acknowledged heartbeat are reported separately; a link is "ok"
// only when no kind of transaction is failing (see inverter_client.h, "Freshness").
// command_off() preempts whatever is queued; stats().mode is off once a mode-off write was
// acknowledged. Sign convention: negative current or power charges the battery.
//
// Each model also names its measurements in a channel catalogue (channels.h): one row per fact,
// with the supervised quantity, the record name, the unit and the rig CSV column.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "core/time.h"

namespace asio {
class io_context;
}  // namespace asio

namespace cellguard::devices {

enum class InverterMode : std::uint8_t { off, power, current, voltage };
std::string_view to_string(InverterMode mode);

// One poll's measurements. Fields a model does not have stay 0 (see its header).
struct InverterReadings {
  MonoTime time_ns{};  // when the poll completed (caller's clock)
  double battery_voltage_v = 0;
  double voltage_ref_v = 0;
  double dc_link_voltage_v = 0;
  double dc_link_power_kw = 0;
  double dc_link_current_a = 0;
  double ambient_c = 0;
  double heatsink_c = 0;
  double comm_timer_s = 0;
  bool ready = false;
  std::array<std::uint16_t, 4> faults{};
  std::array<std::uint16_t, 3> warnings{};
  std::uint16_t status = 0;
  double charged_kwh = 0;
  double discharged_kwh = 0;
  double power_limit_kw = 0;
};

enum class InverterPhase : std::uint8_t { connecting, starting, running, startup_failed, stopped };
std::string_view to_string(InverterPhase phase);

struct InverterLinkStats {
  InverterPhase phase = InverterPhase::connecting;
  std::uint64_t transactions = 0;
  std::uint64_t timeouts = 0;
  std::uint64_t crc_errors = 0;
  std::uint64_t exceptions = 0;       // Modbus exception responses
  std::uint64_t bad_answers = 0;      // malformed: wrong byte count, wrong echo, wrong unit or function
  std::uint64_t echo_mismatches = 0;  // function-6 answers that did not echo address and value
  std::uint64_t retries = 0;
  std::uint64_t reconnects = 0;
  std::uint64_t heartbeats = 0;  // acknowledged heartbeat writes
  int consecutive_failures = 0;  // failed transactions since the link was last healthy
  int read_failures = 0;         // failed polls since the last valid reading
  int heartbeat_failures = 0;    // failed heartbeat writes since the last acknowledged one
  MonoTime last_reading_ns{};    // caller's clock; its epoch: none yet
  MonoTime last_heartbeat_ack_ns{};
  std::string last_error;
  InverterMode mode = InverterMode::off;  // last mode written successfully
  double setpoint = 0;                    // last setpoint written successfully (A or kW)
};

// Something the device did or saw, for the edge's event log.
struct InverterEvent {
  enum class Kind : std::uint8_t {
    connected,
    disconnected,
    startup_step,
    startup_done,
    startup_failed,
    command_written,
    command_failed,
  };
  Kind kind = Kind::connected;
  MonoTime time_ns{};
  std::string message;      // e.g. "security code 125 written", "mode off written 0.4 ms after the request"
  MonoTime requested_ns{};  // command_written/failed: when the command was requested
};
std::string_view to_string(InverterEvent::Kind kind);

// The commands alone: what the edge's actuator and schedule driver need of a power device.
class PowerCommands {
 public:
  virtual ~PowerCommands() = default;
  // Mode off at once (preempts queued commands). `requested_ns` is reported back in the event.
  virtual void command_off(MonoTime requested_ns) = 0;
  // Mode and setpoint (A, kW or V), clamped to the limits; the latest request replaces one not yet
  // written. Refused (event command_failed) until start-up is done, or if the model lacks the mode.
  virtual void command_setpoint(InverterMode mode, double setpoint, MonoTime requested_ns) = 0;
};

class PowerDevice : public PowerCommands {
 public:
  using ReadingsHandler = std::function<void(const InverterReadings&)>;
  // Every failed transaction (ok false, with the reason), and every successful one after which no
  // kind of transaction is failing (ok true).
  using LinkHandler = std::function<void(bool ok, MonoTime time_ns, const std::string& detail)>;
  using EventHandler = std::function<void(const InverterEvent&)>;
  // Every acknowledged heartbeat write, with the time of the answer.
  using HeartbeatHandler = std::function<void(MonoTime time_ns)>;

  virtual void on_readings(ReadingsHandler handler) = 0;  // set before start()
  virtual void on_link(LinkHandler handler) = 0;
  virtual void on_event(EventHandler handler) = 0;
  virtual void on_heartbeat(HeartbeatHandler handler) = 0;

  virtual void start() = 0;
  virtual void stop() = 0;

  virtual InverterLinkStats stats() const = 0;  // any thread
};

// Which register map the device speaks (config: [inverter] model = "rig" | "sunspec").
enum class PowerDeviceModel : std::uint8_t { rig, sunspec };
std::string_view to_string(PowerDeviceModel model);  // "rig", "sunspec"

struct InverterClientConfig;  // inverter_client.h: endpoint, timing, limits (and the rig's map)
// The configured model on `loop`; `clock` is the caller's monotonic clock.
std::unique_ptr<PowerDevice> make_power_device(PowerDeviceModel model, asio::io_context& loop,
                                               const InverterClientConfig& config, const Clock& clock);

}  // namespace cellguard::devices
