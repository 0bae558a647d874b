// The I/O half of a Modbus power device: owns the libmodbus context and one worker thread that
// drives a pure ModbusSession (modbus_session.h): connects, asks the session for requests, performs
// them (with retries after timeouts, CRC errors and malformed answers), hands back the replies and
// posts the session's output to the loop's io_context. Public calls never block on I/O.
//
// Locking: one mutex guards the session; the worker holds it only while calling the session, never
// during a transaction, so command_off() reaches the session while a transaction is in flight and
// is its next request.
#pragma once

#include <memory>

#include "devices/modbus_link.h"
#include "devices/modbus_session.h"
#include "devices/power_device.h"

namespace cellguard::devices {

struct ModbusWorkerConfig {
  InverterEndpoint endpoint;
  Duration response_timeout_ns = std::chrono::milliseconds(200);  // per transaction
  int retries = 1;  // per transaction, after a timeout, CRC error or malformed answer
  Duration reconnect_interval_ns = std::chrono::seconds(1);
};

class ModbusWorker final : public PowerDevice {
 public:
  ModbusWorker(asio::io_context& loop, ModbusWorkerConfig config, std::unique_ptr<ModbusSession> session,
               const Clock& clock);
  ~ModbusWorker() override;  // stops the worker
  ModbusWorker(const ModbusWorker&) = delete;
  ModbusWorker& operator=(const ModbusWorker&) = delete;

  void on_readings(ReadingsHandler handler) override;
  void on_link(LinkHandler handler) override;
  void on_event(EventHandler handler) override;
  void on_heartbeat(HeartbeatHandler handler) override;
  void start() override;
  void stop() override;
  void command_off(MonoTime requested_ns) override;
  void command_setpoint(InverterMode mode, double setpoint, MonoTime requested_ns) override;
  InverterLinkStats stats() const override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cellguard::devices
