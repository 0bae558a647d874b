// A SunSpec storage inverter as a power device (power_device.h): the pure session (SunSpecSession)
// driven by the Modbus worker (modbus_worker.h). Register map: the SunSpec models (sunspec.h),
// found on the device by its "SunS" marker at 40000, 0 or 50000 and its model chain.
//
// Models: 1 (common: make, model, serial number), 103 (inverter: DC voltage DCV, DC power DCW,
// cabinet and heat-sink temperatures, operating state St, events Evt1), 802 (battery: voltage V,
// current A, state, controller heartbeat CtrlHb, inverter command SetInvState) are required; 124
// (basic storage controls: WChaMax, StorCtl_Mod, InWRte, OutWRte) is needed for power setpoints.
//
// Readings (InverterReadings): battery_voltage_v = 802 V, dc_link_current_a = 802 A (positive
// discharges, as the rig's), dc_link_voltage_v = 103 DCV, dc_link_power_kw = 103 DCW / 1000,
// heatsink_c = 103 TmpSnk, ambient_c = 103 TmpCab, status = 103 St, ready = 802 State CONNECTED,
// faults = 103 Evt1 and 802 Evt1 (high word first). One poll reads model 103 and model 802 whole
// (two function-3 reads); a reading is valid only when both arrive complete with V, A, DCV and DCW
// implemented; anything else is a failed read.
//
// Start-up (after every connect): walk the chain, read models 1 and 124, then write SetInvState
// INVERTER_STOPPED ("mode off"), CtrlHb (heartbeat), and with model 124 StorCtl_Mod CHARGE|DISCHARGE
// with InWRte and OutWRte 0 % (no power either way); then wait, as the rig's client does, until
// current and power read ≈ 0 and the voltage lies within the limits.
// Heartbeat: CtrlHb written with a counter every heartbeat_period (the device watches it change).
// Off: SetInvState INVERTER_STOPPED. Setpoints: power (kW) only: OutWRte (discharge) or InWRte
// (charge) as a percentage of WChaMax, StorCtl_Mod CHARGE|DISCHARGE, then SetInvState STARTED;
// current and voltage setpoints are refused (the storage controls take power rates).
// Every write is function 6 with its echo verified; freshness as the rig's client (power_device.h).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "devices/inverter_client.h"
#include "devices/modbus_session.h"
#include "sunspec/sunspec.h"

namespace cellguard::devices {

class SunSpecSession final : public ModbusSession {
 public:
  // Uses the endpoint's timing, the limits and the settle thresholds; the register map is ignored.
  explicit SunSpecSession(InverterClientConfig config);

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

  // The chain found at the last start-up (empty before).
  const sunspec::ModelChain& chain() const { return chain_; }

 private:
  enum class Pending : std::uint8_t {
    none,
    discover,
    common,
    storage,
    startup_write,
    off,
    heartbeat,
    setpoint_write,
    poll_inverter,
    poll_battery
  };
  struct Write {
    std::uint16_t address = 0;
    std::uint16_t value = 0;
    std::string what;
  };
  struct Setpoint {
    double kw = 0;
    MonoTime requested_ns{};
  };

  void begin_startup(MonoTime now);
  void fail_startup(MonoTime now, const std::string& reason);
  void event(InverterEvent::Kind kind, MonoTime now, std::string message, MonoTime requested_ns = {});
  bool heartbeat_live() const;
  void discovered(MonoTime now);
  void decode_poll(const std::vector<std::uint16_t>& battery, MonoTime now);
  void check_settled(const InverterReadings& r, MonoTime now);
  std::optional<std::vector<Write>> setpoint_writes(double kw, std::string& why) const;
  ModbusRequest read(std::uint16_t address, std::uint16_t count, std::string what, Pending pending);
  ModbusRequest write(const Write& w, Pending pending);

  const InverterClientConfig config_;
  InverterLinkStats stats_;
  bool link_up_ = false;
  Pending pending_ = Pending::none;

  // Start-up.
  std::size_t base_index_ = 0;
  std::optional<sunspec::ChainWalker> walker_;
  sunspec::ModelChain chain_;
  std::optional<sunspec::Model> inverter_, storage_, battery_;
  std::string identity_;  // "make model, serial S"
  std::optional<double> wcha_max_w_;
  std::uint16_t rate_scale_factor_ = 0;  // InOutWRte_SF
  bool discovering_ = false, read_common_ = false, read_storage_ = false;
  std::vector<Write> startup_writes_;
  std::size_t startup_index_ = 0;
  bool settling_ = false;
  MonoTime settle_deadline_{};
  MonoTime next_startup_{};

  // Running.
  MonoTime next_poll_{}, next_heartbeat_{}, next_off_attempt_{};
  std::vector<std::uint16_t> inverter_block_;  // this poll's model 103, while model 802 is read
  bool poll_battery_next_ = false;
  std::uint16_t heartbeat_counter_ = 0;
  std::optional<MonoTime> off_requested_;
  std::optional<Setpoint> setpoint_pending_;
  std::vector<Write> setpoint_queue_;  // the writes of the setpoint being written
  std::optional<Setpoint> setpoint_in_progress_;
};

// The SunSpec device on the Modbus worker.
std::unique_ptr<PowerDevice> make_sunspec_device(asio::io_context& loop, InverterClientConfig config,
                                                 const Clock& clock);

}  // namespace cellguard::devices
