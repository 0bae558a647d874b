// The inverter (60 kW bidirectional DC converter) as a Modbus client, RTU or TCP, with libmodbus.
//
// Register map and scalings: shared/spec/seed-rig.md, "Inverter Modbus map" (holding registers
// written with function 6, input registers read with function 4, raw PDU addresses, int16 two's
// complement, raw = value·scale). Sign convention: negative current or power charges the battery.
//
// Start-up sequence (the spec's, with checks): security code, heartbeat, mode off, the limits,
// setpoint 0; every write read back with function 3 where the device allows it; then wait (up to
// startup_settle_timeout) until power and current read ≈ 0 and the battery voltage lies between the
// limits, else the start-up fails (reported; the client keeps polling and retries the start-up after
// reconnect_interval). The heartbeat register is written every heartbeat_period with the value
// heartbeat_timeout/0.1 s on its own schedule, whatever else is queued (rig flaw 8: 33 s, refreshed
// as a side effect). Input registers are polled every poll_period.
//
// Freshness (issue 12 item 4): the link is judged by the age of the last VALID answer of each kind,
// not by "no error". A valid reading is a function-4 answer of the whole block with the right byte
// count; a heartbeat is acknowledged when its function-6 answer echoes the address and the value.
// Reads that time out or come back malformed, heartbeats answered with an exception and writes
// with a wrong echo are failures of their kind and stay failures until that kind succeeds again:
// a working kind does not hide a failing one (no flapping), and a successful transaction reports
// the link ok only when no kind is failing.
//
// Structure (issue 14 item 2): InverterSession is the pure part (time in, Modbus requests out,
// answers in, readings/events/link reports out; modbus_session.h) and ModbusWorker the I/O half
// (modbus_worker.h: the libmodbus context on one worker thread, retries, the verified function-6
// write). The public calls only queue and return at once (never block the loop); results are
// posted to the loop's io_context, so every handler runs on the loop thread. command_off() preempts
// whatever is queued: it is the next transaction after the one in flight.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "core/result.h"
#include "devices/modbus_link.h"
#include "devices/modbus_session.h"
#include "devices/power_device.h"

namespace cellguard::devices {

// Addresses (raw PDU) and scalings; defaults are the rig's.
struct InverterRegisterMap {
  // Holding registers.
  std::uint16_t security_code = 41024;
  std::uint16_t heartbeat = 41025;
  std::uint16_t op_mode = 41026;
  std::uint16_t op_mode_setpoint = 41027;
  std::uint16_t bat_max_volt = 41028;
  std::uint16_t bat_min_volt = 41029;
  std::uint16_t bat_max_charge_current = 41030;
  std::uint16_t bat_max_discharge_current = 41031;
  std::uint16_t bat_max_charge_power = 41032;
  // Input registers.
  std::uint16_t ambient_temp = 30256;
  std::uint16_t heatsink_temp = 30257;
  std::uint16_t modbus_timer = 30262;
  std::uint16_t battery_voltage = 30263;
  std::uint16_t voltage_ref = 30264;
  std::uint16_t dc_link_voltage = 30265;
  std::uint16_t dc_link_power = 30266;
  std::uint16_t dc_link_current = 30267;
  std::uint16_t ready = 30268;
  std::uint16_t fault_first = 30272;    // 4 words
  std::uint16_t warning_first = 30276;  // 3 words
  std::uint16_t status = 30279;
  std::uint16_t charged_kwh_high = 30280;  // u32 high word first, 0.1 kWh
  std::uint16_t discharged_kwh_high = 30282;
  std::uint16_t power_limit = 30285;
  // Values.
  std::uint16_t security_value = 125;
  std::uint16_t mode_off = 0, mode_power = 1, mode_current = 2, mode_voltage = 4;
  double voltage_scale = 32.767;
  double current_scale = 52.094;
  double power_scale = 218.44;
  double temperature_scale = 109.22;
};

struct InverterLimits {
  double charge_current_a = -100;  // <= 0
  double discharge_current_a = 100;
  double charge_power_kw = 30;
  double max_voltage_v = 384;
  double min_voltage_v = 264;
};

struct InverterClientConfig {
  InverterEndpoint endpoint;
  InverterRegisterMap registers;
  InverterLimits limits;
  Duration heartbeat_timeout_ns = std::chrono::seconds(2);  // written to the heartbeat register (in 0.1 s)
  Duration heartbeat_period_ns = std::chrono::milliseconds(500);  // refresh well inside the timeout
  Duration poll_period_ns = std::chrono::milliseconds(200);       // input registers
  Duration response_timeout_ns = std::chrono::milliseconds(200);  // per transaction
  int retries = 1;  // per transaction, after a timeout or CRC error
  Duration startup_settle_timeout_ns = std::chrono::seconds(35);
  double settle_current_a = 1.0;  // "≈ 0" during start-up
  double settle_power_kw = 0.5;
  Duration reconnect_interval_ns = std::chrono::seconds(1);
};

// Start-up settling, the same for every power-device model: current and power ≈ 0 and the battery
// voltage within the limits; the texts of both outcomes.
bool startup_settled(const InverterClientConfig& config, const InverterReadings& r);
std::string startup_done_text(const InverterReadings& r);
std::string startup_not_settled_text(const InverterClientConfig& config, const InverterReadings& r);

// The rig's inverter as a pure Modbus session (see the header comment): the start-up sequence with
// its readbacks, the heartbeat on its own schedule, polls of the input block, off before anything
// else, setpoints (a mode change zeroes the setpoint first), freshness per kind of transaction.
class InverterSession final : public ModbusSession {
 public:
  explicit InverterSession(InverterClientConfig config);

  void connected(MonoTime now, const std::string& endpoint) override;
  void connect_failed(MonoTime now, const std::string& reason) override;
  void disconnected(MonoTime now, const std::string& reason) override;
  void stopped(MonoTime now) override;
  std::optional<ModbusRequest> next_request(MonoTime now) override;
  MonoTime next_wake(MonoTime now) const override;
  bool reply(const ModbusRequest& request, const ModbusReply& answer, MonoTime now) override;
  void command_off(MonoTime requested_ns, MonoTime now) override;
  void command_setpoint(InverterMode mode, double setpoint, MonoTime requested_ns, MonoTime now) override;
  InverterLinkStats stats() const override { return stats_; }

 private:
  enum class Pending : std::uint8_t {
    none,
    off,
    heartbeat,
    startup_write,
    startup_readback,
    setpoint_write,
    poll
  };
  struct Write {
    std::uint16_t address = 0;
    std::uint16_t value = 0;
    std::string what;
  };
  struct SetpointCommand {
    InverterMode mode = InverterMode::off;
    double setpoint = 0;
    MonoTime requested_ns{};
  };

  void event(InverterEvent::Kind kind, MonoTime now, std::string message, MonoTime requested_ns = {});
  void acknowledge_heartbeat(MonoTime now);
  void begin_startup();
  void fail_startup(MonoTime now, const std::string& reason);
  void startup_step_done(MonoTime now, std::string detail);
  void check_settled(const InverterReadings& r, MonoTime now);
  bool heartbeat_live() const;
  std::uint16_t heartbeat_value() const;
  std::uint16_t mode_value(InverterMode mode) const;
  std::uint16_t setpoint_raw(InverterMode mode, double value) const;
  ModbusRequest request(ModbusRequest::Function function, std::uint16_t address, std::uint16_t count,
                        std::uint16_t value, std::string what, Pending pending);
  InverterReadings decode(const std::vector<std::uint16_t>& regs, MonoTime now) const;

  const InverterClientConfig config_;
  InverterLinkStats stats_;
  bool link_up_ = false;
  bool block_too_large_ = false;  // the input block does not fit one read: nothing more is done
  Pending pending_ = Pending::none;
  std::uint16_t input_first_ = 0;
  int input_count_ = 0;

  std::vector<Write> startup_writes_;
  std::size_t startup_index_ = 0;
  bool readback_due_ = false;
  std::string step_detail_;  // the start-up step's event text, completed by its readback
  bool settling_ = false;
  MonoTime settle_deadline_{};
  MonoTime next_startup_{}, next_heartbeat_{}, next_poll_{}, next_off_attempt_{};

  std::optional<MonoTime> off_requested_;
  std::optional<SetpointCommand> setpoint_pending_;  // requested, not yet begun
  std::optional<SetpointCommand> setpoint_active_;   // being written
  std::vector<Write> setpoint_writes_;               // its writes still to do
};

class InverterClient final : public PowerDevice {
 public:
  InverterClient(asio::io_context& loop, const InverterClientConfig& config, const Clock& clock);
  ~InverterClient() override;  // stops the worker
  InverterClient(const InverterClient&) = delete;
  InverterClient& operator=(const InverterClient&) = delete;

  void on_readings(ReadingsHandler handler) override;  // set before start()
  void on_link(LinkHandler handler) override;
  void on_event(EventHandler handler) override;
  void on_heartbeat(HeartbeatHandler handler) override;

  void start() override;
  void stop() override;

  // Mode off at once (preempts queued commands). `requested_ns` is reported back in the event.
  void command_off(MonoTime requested_ns) override;
  // Mode and setpoint (A for current, kW for power, V for voltage), clamped to the limits; the
  // latest request replaces one not yet written. Refused (event command_failed) until start-up is done.
  void command_setpoint(InverterMode mode, double setpoint, MonoTime requested_ns) override;

  InverterLinkStats stats() const override;  // any thread

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cellguard::devices
