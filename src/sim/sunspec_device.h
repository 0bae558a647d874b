// A simulated SunSpec storage inverter on Modbus TCP: the models 1, 103, 124 and 802 (sunspec.h)
// after the "SunS" marker at a base address (40000 by default; 0 or 50000 for tests), wired to the
// pack model. The second power-device model next to the rig's inverter (inverter_device.h).
//
// SunSpecLogic is the register logic, pure: writes to the writable points the client uses
// (802 CtrlHb and SetInvState, 124 StorCtl_Mod, InWRte, OutWRte, WChaMax) are applied, any other
// write is refused with ILLEGAL_DATA_ADDRESS (read-only or unknown) or ILLEGAL_DATA_VALUE (a value
// the point does not take). update() takes the pack's state and computes the current demand:
//   started (SetInvState INVERTER_STARTED) and the controller heartbeat alive: power =
//   OutWRte·WChaMax (if StorCtl_Mod DISCHARGE) − InWRte·WChaMax (if CHARGE), current = power / V;
//   else 0. A CtrlHb that has not changed for heartbeat_timeout_s while started stops the device
//   (SetInvState back to INVERTER_STOPPED, 802 Evt1 COMMUNICATION_ERROR): the device's fail-safe.
// Scale factors: V, A 0.1 (sf −1), W 10 (sf 1), temperatures 0.1 °C, WChaMax 10 W, rates 0.1 %.
// Points the simulator does not model read 0.
//
// SunSpecDevice serves the logic over Modbus TCP (functions 3, 6 and 16) on its own thread and
// exchanges state with the pack in sync(), as InverterDevice does (same threading and locking).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "core/result.h"
#include "core/thread_annotations.h"
#include "sim/inverter_device.h"
#include "sim/inverter_registers.h"

namespace cellguard::sim {

class PackModel;

struct SunSpecSimConfig {
  std::uint16_t base = 40000;
  double w_cha_max_w = 60000;      // WChaMax: the rates' 100 %
  double heartbeat_timeout_s = 5;  // CtrlHb unchanged this long while started: stop
  std::string make = "cellguard";
  std::string model = "sim storage";
  std::string serial = "SIM-0001";
  std::string version = "1.0";
};

struct SunSpecInputs {
  double time_s = 0;
  double battery_voltage_v = 0;
  double dc_link_voltage_v = 0;
  double pack_current_a = 0;  // > 0 discharging
  double ambient_c = 25;
  bool contactors_closed = false;
};

class SunSpecLogic {
 public:
  explicit SunSpecLogic(SunSpecSimConfig config = {});

  std::uint16_t first() const { return config_.base; }
  std::span<const std::uint16_t> registers() const { return registers_; }
  // Addresses of the models' id registers.
  std::uint16_t model_address(std::uint16_t id) const;

  ModbusException write(std::uint16_t address, std::uint16_t value);
  void update(const SunSpecInputs& inputs);

  bool started() const { return started_; }
  bool heartbeat_lost() const { return heartbeat_lost_; }
  double current_demand_a() const { return current_demand_a_; }
  double power_demand_w() const { return power_demand_w_; }
  std::uint16_t heartbeat_value() const;

 private:
  std::uint16_t& at(std::uint16_t model, std::uint16_t offset);
  std::uint16_t get(std::uint16_t model, std::uint16_t offset) const;

  SunSpecSimConfig config_;
  std::vector<std::uint16_t> registers_;
  bool started_ = false;
  bool heartbeat_lost_ = false;
  double now_s_ = 0;
  double heartbeat_changed_s_ = 0;
  std::uint16_t last_heartbeat_ = 0;
  double current_demand_a_ = 0;
  double power_demand_w_ = 0;
};

class SunSpecDevice {
 public:
  static std::unique_ptr<SunSpecDevice> create(PackModel& pack, SunSpecSimConfig config = {});
  SunSpecDevice(const SunSpecDevice&) = delete;
  SunSpecDevice& operator=(const SunSpecDevice&) = delete;
  ~SunSpecDevice();

  // Starts the TCP server; returns "host:port" (port 0: an ephemeral port).
  Result<std::string> start_tcp(const InverterTcpConfig& config);
  std::string tcp_endpoint() const { return endpoint_; }
  void stop();

  // Event-loop thread only: pack state in, current demand out.
  void sync() EXCLUDES(mutex_);

  void set_not_answering(bool on) { not_answering_ = on; }
  SunSpecLogic logic() const EXCLUDES(mutex_);
  std::uint64_t requests() const EXCLUDES(mutex_);

 private:
  SunSpecDevice(PackModel& pack, SunSpecSimConfig config);
  void run() EXCLUDES(mutex_);
  void handle(void* context, const std::uint8_t* request, int length, void* map) EXCLUDES(mutex_);

  PackModel& pack_;
  mutable Mutex mutex_;
  SunSpecLogic logic_ GUARDED_BY(mutex_);
  std::uint64_t requests_ GUARDED_BY(mutex_) = 0;
  std::atomic<bool> not_answering_{false};
  std::string host_;
  std::string endpoint_;
  int listen_fd_ = -1;
  int wake_read_ = -1;
  int wake_write_ = -1;
  std::thread thread_;
};

}  // namespace cellguard::sim
